/**
 * `npm run fleetctl -- <command>`: the model lifecycle of the fleet from the command line.
 * Exit codes: 0 success, 1 refused or failed, 2 usage or configuration error. Results go to
 * stdout (one JSON document with `--json`), progress to stderr. docs/fleetctl.md.
 */
import { Redis } from 'ioredis';
import { runMain } from '../../../shared/src/lifecycle/run-main.js';
import { COMMANDS, helpText, parseCommand, USAGE } from './args.js';
import { buildJob, jobsStatusOptions } from './commands.js';
import { ConfigError, loadConfig } from './config.js';
import type { FleetContext } from './context.js';
import { UsageError } from './errors.js';
import { jobLines, jobsStatusLines, modelsStatusLines } from './format.js';
import { runAsJob } from './model-jobs.js';
import { jobsStatus } from './queue-status.js';
import { modelsStatus } from './status.js';

const out = (line: string) => process.stdout.write(`${line}\n`);
const err = (line: string) => process.stderr.write(`${line}\n`);

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseCommand(argv);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    err(`fleetctl: ${e.message}`);
    const command = argv.slice(0, 2).join(' ');
    err(COMMANDS[command] ? helpText(command) : USAGE);
    return 2;
  }
  if (parsed.help) {
    out(helpText(parsed.command));
    return 0;
  }
  let config;
  let job;
  try {
    config = loadConfig(process.env);
    job = buildJob(parsed, process.env.INIT_CWD ?? process.cwd());
  } catch (e) {
    if (!(e instanceof UsageError) && !(e instanceof ConfigError)) throw e;
    err(`fleetctl: ${e.message}`);
    if (e instanceof UsageError) err(helpText(parsed.command));
    return 2;
  }
  const json = parsed.json;
  const redis = new Redis(config.redisUrl, { maxRetriesPerRequest: 3, ...(config.security.redisTls ? { tls: config.security.redisTls } : {}) });
  redis.on('error', () => undefined); // commands reject with the cause; the listener only keeps ioredis quiet
  const abort = new AbortController();
  let interrupts = 0;
  const onSignal = () => {
    interrupts++;
    if (interrupts > 1) process.exit(130);
    err('fleetctl: stopping (Ctrl-C again to quit at once)');
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: FleetContext = { config, redis, progress: (line) => err(`fleetctl: ${line}`), signal: abort.signal };
  try {
    if (job) {
      const outcome = await runAsJob(ctx, job);
      if (json) out(JSON.stringify(outcome, null, 2));
      else for (const line of jobLines(outcome)) (outcome.ok ? out : err)(line);
      return outcome.ok ? 0 : 1;
    }
    if (parsed.command === 'models status') {
      const status = await modelsStatus(ctx, parsed.args.model);
      if (json) out(JSON.stringify(status, null, 2));
      else modelsStatusLines(status).forEach((l) => out(l));
      return 0;
    }
    const o = jobsStatusOptions(parsed);
    const queues = await jobsStatus(redis, [config.queuePrefix, config.actionsQueuePrefix, ...o.prefixes], { stuckAfterMs: o.stuckAfterMs, failedLimit: o.failedLimit, ...(o.queues.length ? { queues: o.queues } : {}) });
    if (json) out(JSON.stringify(queues, null, 2));
    else jobsStatusLines(queues).forEach((l) => out(l));
    return 0;
  } catch (e) {
    err(`fleetctl: ${parsed.command} failed: ${(e as Error).message}`);
    return 1;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    redis.disconnect();
  }
}

runMain('fleetctl', () => main(process.argv.slice(2)), { exit: true });
