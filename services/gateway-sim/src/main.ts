/**
 * Entry point of `npm run sim`: parses flags, runs the simulator, prints one JSON summary line on
 * stdout (logs go to stderr). Exit codes: 0 done (also after a clean stop on SIGINT/SIGTERM),
 * 1 failed while running, 2 bad flags. Never imported.
 */
// First, and alone: the rest is imported dynamically below, so that a SIGTERM / SIGINT while it
// loads (1-3 s) ends the process with 0 rather than killing it (early-signals.ts).
import '../../../shared/src/lifecycle/early-signals.js';

const [{ handleShutdownSignals }, { createLogger }, { USAGE, parseSimArgs }, { ConfigError }, { runSimulator }] = await Promise.all([
  import('../../../shared/src/lifecycle/signals.js'),
  import('../../../shared/src/log/logger.js'),
  import('./config.js'),
  import('./errors.js'),
  import('./producer.js'),
]);

async function main(): Promise<number> {
  let parsed;
  try {
    parsed = parseSimArgs(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    for (const problem of err.problems) process.stderr.write(`gateway-sim: ${problem}\n`);
    process.stderr.write('gateway-sim: see --help for usage\n');
    return 2;
  }
  if (parsed.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const { config } = parsed;
  const logger = createLogger({ service: 'gateway-sim', level: config.logLevel, destination: process.stderr });

  // Signals are handled here only: the first stops cleanly, a second exits at once.
  const stop = new AbortController();
  const removeSignalHandlers = handleShutdownSignals({
    onStop: (signal) => {
      logger.info({ signal }, 'stopping: finishing in-flight sends (send the signal again to exit at once)');
      stop.abort();
    },
    onForce: (signal) => {
      logger.warn({ signal }, 'second signal: exiting without waiting for in-flight sends');
      process.exit(130);
    },
  });

  try {
    const summary = await runSimulator(config, { logger, signal: stop.signal });
    process.stdout.write(`${JSON.stringify(summary)}\n`);
    return 0;
  } catch (err) {
    process.stderr.write(`gateway-sim: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  } finally {
    removeSignalHandlers();
  }
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`gateway-sim: unexpected error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
