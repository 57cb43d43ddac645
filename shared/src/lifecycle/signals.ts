/**
 * One place for SIGINT/SIGTERM: the first starts a graceful stop, a second one (a person pressing
 * Ctrl-C again) forces. Copies of the first signal that arrive within `echoMs` are not a second
 * press: under `npm start` or `npm run x` a terminal's Ctrl-C reaches npm, tsx and the process
 * itself, and npm and tsx each forward it again, so one press arrives two or three times.
 */
export interface ShutdownSignalOptions {
  /** The first signal: start a graceful stop. */
  onStop: (signal: NodeJS.Signals) => void;
  /** A later signal: stop now. */
  onForce: (signal: NodeJS.Signals) => void;
  /** Window in which repeats count as echoes of the first. @defaultValue 1000 */
  echoMs?: number;
}

/** Where early-signals.ts leaves the handler it installs while the modules load. */
export const EARLY_SIGNALS_KEY = Symbol.for('factory-fleet.lifecycle.early-signals');
export type EarlySignalHandler = (signal: NodeJS.Signals) => void;

/** Installs the handlers (replacing early-signals.ts's, if present); returns a function that removes them. */
export function handleShutdownSignals(options: ShutdownSignalOptions): () => void {
  const echoMs = options.echoMs ?? 1000;
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals) => {
    const now = Date.now();
    if (firstAt === undefined) {
      firstAt = now;
      options.onStop(signal);
    } else if (now - firstAt >= echoMs) {
      options.onForce(signal);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  // Only now the early handler goes: removing a signal's last listener closes Node's watcher of
  // it, and a signal that arrived while the modules were evaluated, not yet dispatched, would be
  // dropped with it (seen: a SIGTERM 0.6 s after start was lost and the worker ran on).
  const holder = globalThis as Record<symbol, unknown>;
  const early = holder[EARLY_SIGNALS_KEY] as EarlySignalHandler | undefined;
  if (early) {
    process.off('SIGINT', early);
    process.off('SIGTERM', early);
    delete holder[EARLY_SIGNALS_KEY];
  }
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
