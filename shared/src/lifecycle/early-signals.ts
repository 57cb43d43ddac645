/**
 * Imported first by every service entry point (`services/<kind>/src/main.ts`): from then until
 * the service installs its own handlers ({@link handleShutdownSignals}, before it starts), a
 * SIGTERM or SIGINT ends the process at once with exit code 0, the graceful stop of a service
 * that has not started. Without it Node's default applies while the modules load (1-3 s: ONNX
 * Runtime, sharp, TF.js, kafkajs): killed by the signal, exit status 143 / 130, which an
 * orchestrator reports as a failure although a rolling update or a Ctrl-C simply came early.
 */
import { EARLY_SIGNALS_KEY, type EarlySignalHandler } from './signals.js';

const early: EarlySignalHandler = (signal) => {
  process.stderr.write(`${signal} before the service started: exiting (nothing to stop)\n`);
  process.exit(0);
};
(globalThis as Record<symbol, unknown>)[EARLY_SIGNALS_KEY] = early;
process.once('SIGTERM', early);
process.once('SIGINT', early);
