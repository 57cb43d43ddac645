import type { Batch, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { AlertTransition } from '../../../shared/src/anomaly/alerts.js';
import { contributionsByChannel, normalise, scoreWindow, topChannels } from '../../../shared/src/anomaly/score.js';
import { encodeAlertEvent, encodeAnomalyScore, type AnomalyScore } from '../../../shared/src/contracts/anomaly.js';
import { encodeDeadLetter } from '../../../shared/src/contracts/dead-letter.js';
import { ContractViolation, type RejectReason } from '../../../shared/src/contracts/errors.js';
import { decodeSensorMessage, sensorEventId, type SensorLimits, type SensorMessage } from '../../../shared/src/contracts/sensor.js';
import type { PartitionTransactions } from '../../../shared/src/kafka/partition-transactions.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { claimEvents, type EventClaim } from '../../../shared/src/redis/dedupe.js';
import type { SequenceModel } from './models.js';
import { toSampleRows, type SampleOptions, type SampleRow } from './stages/samples.js';
import type { SensorWindow } from './stages/windows.js';
import { checkpointKey, newAssetState, restorePartitionState, serialise, type AssetState, type PartitionState, type WindowSettings } from './state/checkpoint.js';

export interface SensorPipelineDeps {
  workerId: string;
  groupId: string;
  topics: { scores: string; alerts: string; readingsDlq: string };
  limits: SensorLimits;
  skew: Pick<SampleOptions, 'maxFutureSkewMs' | 'maxPastSkewMs'>;
  windows: WindowSettings;
  alertTopChannels: number;
  dedupeTtlMs: number;
  checkpointTtlMs: number;
  redis: Redis;
  transactions: PartitionTransactions;
  logger: Logger;
  /** The asset's model, or undefined when none is configured for it. */
  route: (assetId: string) => SequenceModel | undefined;
  /** One normalised window in, its reconstruction out (through the model's micro-batcher). */
  reconstruct: (model: SequenceModel, x: Float32Array) => Promise<Float32Array>;
  committedOffset: (topic: string, partition: number) => Promise<bigint | undefined>;
  /** Makes the consumer read a partition from `offset` next. */
  seek: (topic: string, partition: number, offset: string) => void;
  /** Called just before the commit; throws when this worker may no longer own the partition. */
  beforeCommit: () => Promise<void>;
  /** Live state per input partition (`<topic>:<partition>`), owned by the worker. */
  states: Map<string, PartitionState>;
  /** Worker clock for the skew checks. @defaultValue Date.now */
  now?: () => number;
}

export interface SensorBatchOutcome {
  consumed: number;
  /** Samples accepted into windows. */
  samples: number;
  windows: number;
  anomalous: number;
  raised: number;
  cleared: number;
  /** Readings or chunks whose id was already processed at another offset. */
  duplicates: number;
  /** Samples at an event time the asset already had (dropped without a dead letter: same data). */
  duplicateSamples: number;
  /** Samples older than the allowed lateness. */
  lateSamples: number;
  alreadyCommitted: number;
  deadLettered: Partial<Record<RejectReason, number>>;
  /** Set when the partition's state was (re)loaded from its checkpoint for this batch. */
  restored?: { offset: string | null; found: boolean; assets: number; discarded: number };
  checkpointBytes: number;
  timings: { claimMs: number; inferMs: number; commitMs: number };
}

/** Redis key namespace of reading / chunk id claims. */
export const sensorDedupeNamespace = (groupId: string) => `dedupe:${groupId}:reading`;

type Record_ = Batch['messages'][number];

interface Accepted {
  message: Record_;
  value: SensorMessage;
  model: SequenceModel;
  rows: SampleRow[];
  claim: EventClaim;
}

/**
 * One input partition's batch, start to commit. As in the vision pipeline the transaction begins
 * first; with a fresh producer (new owner, or after a failed batch) the committed offset is
 * re-read, records before it are skipped, and the partition's state is restored from the
 * checkpoint written for exactly that offset. Then: decode and validate every record (invalid
 * ones, unknown assets and late samples become dead letters), claim reading / chunk ids in Redis
 * (re-sends dropped), push samples into each asset's windows in offset order, reconstruct every
 * completed window on the inference pool, score it, run the asset's alert machine, write the
 * state checkpoint for the batch's next offset, and commit scores, alerts, dead letters and the
 * input offset together. Throws (commits nothing, and drops the in-memory state so the next try
 * starts from the checkpoint) on anything but a bad record.
 */
export async function processSensorBatch(deps: SensorPipelineDeps, batch: Pick<Batch, 'topic' | 'partition' | 'messages' | 'lastOffset'>): Promise<SensorBatchOutcome> {
  const receivedAt = Date.now();
  const now = deps.now ?? Date.now;
  const outcome: SensorBatchOutcome = {
    consumed: batch.messages.length,
    samples: 0,
    windows: 0,
    anomalous: 0,
    raised: 0,
    cleared: 0,
    duplicates: 0,
    duplicateSamples: 0,
    lateSamples: 0,
    alreadyCommitted: 0,
    deadLettered: {},
    checkpointBytes: 0,
    timings: { claimMs: 0, inferMs: 0, commitMs: 0 },
  };
  const stateKey = `${batch.topic}:${batch.partition}`;
  const t0 = performance.now();
  const txn = await deps.transactions.begin(batch.topic, batch.partition);
  try {
    let messages = batch.messages;
    let state = deps.states.get(stateKey);
    if (txn.fresh || !state) {
      const committed = await deps.committedOffset(batch.topic, batch.partition);
      if (committed !== undefined && committed > BigInt(batch.lastOffset()) + 1n) {
        // A previous owner committed past this whole batch: committing here would move the
        // offset back. Continue at its offset instead (the checkpoint restored below is for it).
        outcome.alreadyCommitted = batch.messages.length;
        deps.logger.warn({ topic: batch.topic, partition: batch.partition, committed: String(committed) }, 'a previous owner committed past this batch; continuing at its offset');
        deps.states.delete(stateKey);
        await txn.abort();
        deps.seek(batch.topic, batch.partition, committed.toString());
        return outcome;
      }
      if (committed !== undefined) messages = messages.filter((m) => BigInt(m.offset) >= committed);
      outcome.alreadyCommitted = batch.messages.length - messages.length;
      if (outcome.alreadyCommitted > 0) {
        deps.logger.warn({ topic: batch.topic, partition: batch.partition, skipped: outcome.alreadyCommitted, committed: String(committed) }, 'skipping records a previous owner already committed');
      }
      const r = await restorePartitionState(deps.redis, { groupId: deps.groupId, topic: batch.topic, partition: batch.partition }, committed, deps.route, deps.windows, deps.logger);
      state = r.state;
      outcome.restored = { offset: committed === undefined ? null : String(committed), found: r.found, assets: r.state.assets.size, discarded: r.discarded.length };
      const fields = { topic: batch.topic, partition: batch.partition, ...outcome.restored, discardedAssets: r.discarded.slice(0, 20) };
      if (!r.found) deps.logger.warn(fields, 'no checkpoint for the committed offset: assets start with empty windows');
      else if (r.discarded.length > 0) deps.logger.warn(fields, 'partition state restored; some assets start afresh');
      else deps.logger.info(fields, 'partition state restored from its checkpoint');
      deps.states.set(stateKey, state);
    }
    const partitionState = state;

    const deadLetters: Message[] = [];
    const reject = (message: Record_, error: ContractViolation) => {
      outcome.deadLettered[error.reason] = (outcome.deadLettered[error.reason] ?? 0) + 1;
      deps.logger.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason: error.reason, field: error.field }, `dead-lettered: ${error.message}`);
      deadLetters.push(encodeDeadLetter({ record: message, source: { topic: batch.topic, partition: batch.partition, offset: message.offset }, error, worker: deps.workerId, at: Date.now() }));
    };

    const clock = now();
    const valid: Accepted[] = [];
    for (const message of messages) {
      const decoded = decodeSensorMessage(message, deps.limits);
      if (!decoded.ok) {
        reject(message, decoded.error);
        continue;
      }
      const value = decoded.value;
      const model = deps.route(value.assetId);
      if (!model) {
        reject(message, new ContractViolation('unknown-asset', 'assetId', 'must match a pattern of SENSOR_MODELS', `no model serves "${value.assetId}"`));
        continue;
      }
      const rows = toSampleRows(value, model.channels, clock, { ...deps.skew, periodMs: model.periodMs });
      if (!rows.ok) {
        reject(message, rows.error);
        continue;
      }
      valid.push({ message, value, model, rows: rows.value, claim: { eventId: sensorEventId(value), position: `${batch.topic}/${batch.partition}/${message.offset}` } });
    }
    const claims = await claimEvents(deps.redis, sensorDedupeNamespace(deps.groupId), valid.map((v) => v.claim), deps.dedupeTtlMs);
    const fresh = valid.filter((_, i) => claims[i] !== 'duplicate');
    outcome.duplicates = valid.length - fresh.length;

    // Samples into windows, in offset order (the order the gateway sent them).
    const completed: { asset: AssetState; window: SensorWindow }[] = [];
    for (const a of fresh) {
      let asset = partitionState.assets.get(a.value.assetId);
      if (!asset) {
        asset = newAssetState(a.value.assetId, a.model, deps.windows);
        partitionState.assets.set(a.value.assetId, asset);
      }
      const before = asset.windower.stats();
      const pushed = asset.windower.pushAll(a.rows);
      const after = asset.windower.stats();
      outcome.samples += after.accepted - before.accepted;
      outcome.duplicateSamples += pushed.duplicates;
      for (const w of pushed.windows) completed.push({ asset, window: w });
      if (pushed.late.length > 0) {
        outcome.lateSamples += pushed.late.length;
        const first = pushed.late[0]!;
        if (a.value.kind === 'reading') reject(a.message, first.violation);
        else reject(a.message, new ContractViolation('late', `samples.${first.index}`, first.violation.rule, `${pushed.late.length} of ${a.rows.length} samples late, the others were used; first: ${first.violation.message}`));
      }
    }

    const t1 = performance.now();
    outcome.timings.claimMs = t1 - t0;
    const scored = await Promise.all(
      completed.map(async ({ asset, window }) => {
        const m = asset.model;
        const x = normalise(window.values, m.normalisation, m.channels.length) as Float32Array;
        const y = await deps.reconstruct(m, Float32Array.from(x));
        return { asset, window, ...scoreWindow(x, y, m.size, m.channels.length, m.scoring) };
      }),
    );
    const t2 = performance.now();
    outcome.timings.inferMs = t2 - t1;

    const scores: Message[] = [];
    const alerts: Message[] = [];
    // `completed` is in event-time order per asset, which the alert machines need.
    for (const s of scored) {
      const m = s.asset.model;
      const anomalous = s.score > m.threshold;
      const contributions = contributionsByChannel(s.contributions, m.channels);
      const processing = { worker: deps.workerId, receivedAt, producedAt: Date.now() };
      const score: AnomalyScore = {
        assetId: s.window.assetId,
        windowId: s.window.windowId,
        windowStart: s.window.windowStart,
        windowEnd: s.window.windowEnd,
        score: s.score,
        threshold: m.threshold,
        anomalous,
        contributions,
        afterGap: s.window.afterGap,
        model: m.ref,
        processing,
      };
      scores.push(encodeAnomalyScore(score));
      if (anomalous) outcome.anomalous++;
      const applied = s.asset.alerts.apply({ windowId: s.window.windowId, windowStart: s.window.windowStart, windowEnd: s.window.windowEnd, anomalous });
      const t: AlertTransition | null = applied.applied ? applied.transition : null;
      if (!t) continue;
      if (t.state === 'raised') outcome.raised++;
      else outcome.cleared++;
      alerts.push(
        encodeAlertEvent({
          alertId: t.alertId,
          assetId: s.window.assetId,
          state: t.state,
          at: t.at,
          windowId: t.windowId,
          score: s.score,
          threshold: m.threshold,
          topChannels: topChannels(contributions, deps.alertTopChannels),
          model: m.ref,
          processing,
        }),
      );
    }
    outcome.windows = scores.length;

    const nextOffset = BigInt(batch.lastOffset()) + 1n;
    const checkpoint = serialise(batch.topic, batch.partition, partitionState, nextOffset);
    outcome.checkpointBytes = Buffer.byteLength(checkpoint);
    await deps.redis.set(checkpointKey(deps.groupId, batch.topic, batch.partition, nextOffset), checkpoint, 'PX', deps.checkpointTtlMs);

    // A heartbeat that fails (rebalance in progress, member fenced) means this worker may no
    // longer own the partition: abort rather than commit as a possible zombie.
    await deps.beforeCommit();
    await txn.commit({
      groupId: deps.groupId,
      nextOffset: nextOffset.toString(),
      outputs: [
        { topic: deps.topics.scores, messages: scores },
        { topic: deps.topics.alerts, messages: alerts },
        { topic: deps.topics.readingsDlq, messages: deadLetters },
      ],
    });
    const previous = partitionState.nextOffset;
    partitionState.nextOffset = nextOffset;
    if (previous !== undefined && previous !== nextOffset) {
      // The replaced checkpoint can never be read again; a failure here only leaves it to expire.
      await deps.redis.del(checkpointKey(deps.groupId, batch.topic, batch.partition, previous)).catch((err: unknown) => deps.logger.debug({ err }, 'old checkpoint not deleted'));
    }
    outcome.timings.commitMs = performance.now() - t2;
    return outcome;
  } catch (err) {
    // The windows and alert machines may hold this batch's samples: only the checkpoint is right now.
    deps.states.delete(stateKey);
    await txn.abort();
    throw err;
  }
}
