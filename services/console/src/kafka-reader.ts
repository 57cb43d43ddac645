import type { Consumer, IHeaders, Kafka } from 'kafkajs';
import { decodeAlertEvent, decodeAnomalyScore } from '../../../shared/src/contracts/anomaly.js';
import { decodeFrame } from '../../../shared/src/contracts/frame.js';
import { decodeDefectEvent, decodeInspection } from '../../../shared/src/contracts/inspection.js';
import { FRAME_TOPIC_MAX_MESSAGE_BYTES } from '../../../shared/src/contracts/topics.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import type { ConsoleConfig } from './config.js';
import type { ConsoleState } from './state/index.js';

/** Options of {@link createKafkaReader}. */
export interface KafkaReaderOptions {
  kafka: Kafka;
  groupId: string;
  topics: ConsoleConfig['topics'];
  state: ConsoleState;
  logger: Logger;
  /** Called once when the consumer crashed for good (kafkajs gave up restarting it). */
  onFatal: (err: Error) => void;
}

/** Bad records are logged with their place, at most this many lines a minute (a broken producer must not flood the log). */
const BAD_LOG_PER_MINUTE = 20;

/**
 * The console's view of the result topics and the frames: its own group, read_committed (what
 * an MES sees: aborted worker transactions never show), from the end of each topic. Offsets are
 * never committed: the console is a live view and starts from the end every time, and leaves no
 * offsets behind for its per-process group. Nothing here throws on a bad record: it is counted
 * (`counters.bad`) and logged once with topic, partition and offset.
 */
export function createKafkaReader(options: KafkaReaderOptions): { start(): Promise<void>; stop(): Promise<void> } {
  const { kafka, topics, state, logger } = options;
  const log = logger.child({ component: 'kafka-reader' });
  let consumer: Consumer | undefined;
  let stopping = false;
  let badLogged = 0;
  let badWindow = Date.now();

  const bad = (topic: string, partition: number, offset: string, reason: string) => {
    state.onBadRecord();
    const now = Date.now();
    if (now - badWindow > 60_000) {
      badWindow = now;
      badLogged = 0;
    }
    if (badLogged++ < BAD_LOG_PER_MINUTE) log.warn({ topic, partition, offset, reason }, 'record refused by the contract decoder; skipped');
  };

  const handle = (topic: string, partition: number, message: { offset: string; key: Buffer | null; value: Buffer | null; headers?: IHeaders }) => {
    if (topic === topics.frames) {
      const f = decodeFrame(message);
      if (!f.ok) return bad(topic, partition, message.offset, f.error.message);
      // A copy: kafkajs hands out slices of the whole fetch response, which a kept slice would pin.
      state.onFrame({ ...f.value, image: Buffer.from(f.value.image) });
    } else if (topic === topics.inspections) {
      const r = decodeInspection(message);
      if (!r.ok) return bad(topic, partition, message.offset, r.error.message);
      state.onInspection(r.value);
    } else if (topic === topics.defects) {
      const r = decodeDefectEvent(message);
      if (!r.ok) return bad(topic, partition, message.offset, r.error.message);
      state.onDefect(r.value);
    } else if (topic === topics.anomalyScores) {
      const r = decodeAnomalyScore(message);
      if (!r.ok) return bad(topic, partition, message.offset, r.error.message);
      state.onScore(r.value);
    } else if (topic === topics.alerts) {
      const r = decodeAlertEvent(message);
      if (!r.ok) return bad(topic, partition, message.offset, r.error.message);
      state.onAlert(r.value);
    }
  };

  return {
    async start() {
      const c = kafka.consumer({
        groupId: options.groupId,
        readUncommitted: false,
        maxWaitTimeInMs: 250,
        // A frame is up to 8 MiB plus headers: a smaller per-partition fetch would stall on it.
        maxBytesPerPartition: FRAME_TOPIC_MAX_MESSAGE_BYTES,
        maxBytes: 4 * FRAME_TOPIC_MAX_MESSAGE_BYTES,
      });
      consumer = c;
      c.on(c.events.GROUP_JOIN, (e) => {
        log.info({ memberAssignment: e.payload.memberAssignment }, 'joined the console group');
        state.setKafkaState('running');
      });
      c.on(c.events.DISCONNECT, () => {
        if (!stopping) state.setKafkaState('disconnected');
      });
      c.on(c.events.CRASH, (e) => {
        const err = e.payload.error;
        log.error({ err, restart: e.payload.restart }, 'console consumer crashed');
        state.setKafkaState(e.payload.restart ? 'restarting' : 'failed');
        if (!e.payload.restart && !stopping) options.onFatal(err);
      });
      state.setKafkaState('connecting');
      await c.connect();
      await c.subscribe({ topics: Object.values(topics), fromBeginning: false });
      await c.run({
        autoCommit: false,
        partitionsConsumedConcurrently: 4,
        eachMessage: ({ topic, partition, message }) => {
          try {
            handle(topic, partition, message);
          } catch (err) {
            // A bug in a state unit must not stop the live view: count it like a bad record.
            bad(topic, partition, message.offset, err instanceof Error ? err.message : String(err));
          }
          return Promise.resolve();
        },
      });
    },
    async stop() {
      stopping = true;
      state.setKafkaState('stopped');
      await consumer?.disconnect().catch((err: unknown) => log.warn({ err }, 'consumer disconnect failed'));
    },
  };
}
