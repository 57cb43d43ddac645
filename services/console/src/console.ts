import { createKafka } from '../../../shared/src/kafka/client.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import type { ConsoleConfig } from './config.js';
import { startConsoleServer, type ConsoleServer } from './http-server.js';
import { createKafkaReader } from './kafka-reader.js';
import { createScraper } from './scraper.js';
import { ConsoleState } from './state/index.js';

/** Lifecycle states, logged on every transition. */
export type ConsoleLifecycle = 'initialized' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** Named error for a stop that passed its deadline. */
export class ConsoleShutdownPeriodExpiredError extends Error {
  override readonly name = 'ConsoleShutdownPeriodExpiredError';
}

/**
 * The console process: the HTTP server (page, API, andon route), the Kafka reader and the
 * metrics scraper around one bounded {@link ConsoleState}. The server starts first, so the andon
 * route answers the actions worker while Kafka is still connecting. `done` resolves after a
 * graceful stop and rejects when the consumer fails for good.
 */
export class ConsoleService {
  readonly state: ConsoleState;
  private lifecycle: ConsoleLifecycle = 'initialized';
  private server: ConsoleServer | undefined;
  private readonly reader: ReturnType<typeof createKafkaReader>;
  private readonly scraper: ReturnType<typeof createScraper>;
  private pushTimer: NodeJS.Timeout | undefined;
  private pushedVersion = -1;
  private stopping: Promise<void> | undefined;
  private settle!: { resolve: () => void; reject: (err: Error) => void };
  readonly done: Promise<void>;

  constructor(
    private readonly config: ConsoleConfig,
    private readonly logger: Logger,
  ) {
    this.state = new ConsoleState(config.groupId, config.state);
    this.done = new Promise<void>((resolve, reject) => (this.settle = { resolve, reject }));
    this.done.catch(() => undefined); // observed by whoever awaits it; never an unhandled rejection
    const kafka = createKafka({
      brokers: config.kafkaBrokers,
      clientId: config.consoleId,
      logger,
      ...(config.security.kafkaTls ? { ssl: config.security.kafkaTls } : {}),
      ...(config.security.kafkaSasl ? { sasl: config.security.kafkaSasl } : {}),
    });
    this.reader = createKafkaReader({
      kafka,
      groupId: config.groupId,
      topics: config.topics,
      state: this.state,
      logger,
      onFatal: (err) => void this.fail(err),
    });
    this.scraper = createScraper({
      targets: config.workers,
      intervalMs: config.scrapeIntervalMs,
      timeoutMs: config.scrapeTimeoutMs,
      onRows: (rows) => this.state.setFleet(rows),
      logger,
    });
  }

  /** The bound HTTP port (the chosen one when configured as 0). */
  get port(): number {
    if (!this.server) throw new Error(`console is ${this.lifecycle}: no port yet`);
    return this.server.port;
  }

  get status(): ConsoleLifecycle {
    return this.lifecycle;
  }

  private to(next: ConsoleLifecycle): void {
    this.logger.info({ from: this.lifecycle, to: next }, `console ${next}`);
    this.lifecycle = next;
  }

  async start(): Promise<void> {
    if (this.lifecycle !== 'initialized') throw new Error(`console cannot start: it is ${this.lifecycle}`);
    this.to('starting');
    this.server = await startConsoleServer({
      port: this.config.port,
      host: this.config.host,
      publicDir: this.config.publicDir,
      state: this.state,
      heartbeatMs: this.config.heartbeatMs,
      logger: this.logger,
    });
    this.logger.info({ port: this.server.port, host: this.config.host }, 'console listening');
    this.scraper.start();
    this.pushTimer = setInterval(() => {
      if (this.state.version === this.pushedVersion) return;
      this.pushedVersion = this.state.version;
      this.server?.push();
    }, this.config.pushIntervalMs);
    try {
      await this.reader.start();
    } catch (err) {
      await this.fail(err instanceof Error ? err : new Error(String(err)));
      throw err;
    }
    this.to('running');
  }

  /** Graceful stop: streams end, the consumer leaves its group, the server closes. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= this.close().then(
      () => {
        this.to('stopped');
        this.settle.resolve();
      },
      (err: Error) => {
        this.to('failed');
        this.settle.reject(err);
      },
    );
    return this.stopping;
  }

  private async fail(err: Error): Promise<void> {
    if (this.stopping) return;
    this.logger.error({ err }, 'console failed');
    this.stopping = this.close().finally(() => {
      this.to('failed');
      this.settle.reject(err);
    });
    await this.stopping.catch(() => undefined);
  }

  /** Ordered cleanups, each on its own: one failing does not skip the others. */
  private async close(): Promise<void> {
    this.to('stopping');
    clearInterval(this.pushTimer);
    const deadline = new Promise<never>((_, reject) => {
      const t = setTimeout(() => reject(new ConsoleShutdownPeriodExpiredError(`console did not stop within ${this.config.shutdownTimeoutMs} ms`)), this.config.shutdownTimeoutMs);
      t.unref();
    });
    const steps: [string, () => Promise<void>][] = [
      ['scraper', () => this.scraper.stop()],
      ['http server', () => this.server?.close() ?? Promise.resolve()],
      ['kafka reader', () => this.reader.stop()],
    ];
    const run = async () => {
      for (const [name, step] of steps) {
        try {
          await step();
        } catch (err) {
          this.logger.warn({ err, step: name }, 'cleanup step failed');
        }
      }
    };
    await Promise.race([run(), deadline]);
  }
}
