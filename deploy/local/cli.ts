/**
 * `npm run stack:up|down|status`: the local Kafka broker and Redis for development and tests.
 * Configuration from the environment (see stackOptionsFromEnv): STACK_DIR, KAFKA_PORT,
 * KAFKA_CONTROLLER_PORT, REDIS_PORT, KAFKA_BROKERS and REDIS_URL (use those instead of starting).
 * Exit codes: 0 done / healthy, 1 failed / not healthy, 2 usage.
 */
import { StackError, formatStatus, stackDown, stackOptionsFromEnv, stackStatus, stackUp } from './stack.js';

const USAGE = 'usage: tsx deploy/local/cli.ts up|down|status';

async function main(argv: string[]): Promise<number> {
  const command = argv[0];
  if (argv.length !== 1 || (command !== 'up' && command !== 'down' && command !== 'status')) {
    console.error(USAGE);
    return 2;
  }
  const log = (line: string) => console.log(line);
  const options = { ...stackOptionsFromEnv(process.env), log };
  const t0 = performance.now();
  switch (command) {
    case 'up':
      await stackUp(options);
      return 0;
    case 'down':
      await stackDown(options);
      console.log(`stack down in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      return 0;
    case 'status': {
      const status = await stackStatus(options);
      for (const line of formatStatus(status)) console.log(line);
      return status.healthy ? 0 : 1;
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    const command = process.argv[2] ?? '';
    if (err instanceof StackError) console.error(`stack ${command}: ${err.message}`);
    else console.error(`stack ${command} failed:`, err);
    process.exitCode = 1;
  },
);
