import type { Batch, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { AlertTransition } from '../../../shared/src/anomaly/alerts.js';
import { contributionsByChannel, normalise, scoreWindow, topChannels } from '../../../shared/src/anomaly/score.js';
import { encodeAlertEvent, encodeAnomalyScore, type AnomalyScore } from '../../../shared/src/contracts/anomaly.js';
import { encodeDeadLetter } from '../../../shared/src/contracts/dead-letter.js';
import { ContractViolation, type RejectReason } from '../../../shared/src/contracts/errors.js';
import { decodeSensorInput, sensorEventId, type SensorInput, type SensorLimits } from '../../../shared/src/contracts/sensor.js';
import type { PartitionTransactions } from '../../../shared/src/kafka/partition-transactions.js';
import { PartitionSeek, type LaneBatch, type PreparedBatch } from '../../../shared/src/worker/partition-lanes.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { claimEvents, type EventClaim } from '../../../shared/src/redis/dedupe.js';
import type { SensorShadowPair } from '../../../shared/src/models/shadow.js';
import type { SequenceModel } from './models.js';
import { toSampleBlock, type SampleBlock, type SampleOptions } from './stages/samples.js';
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
  /** One normalised window in, its reconstruction out (through the model's micro-batcher); `x` is read, never changed or transferred (the scoring reads it afterwards). */
  reconstruct: (model: SequenceModel, x: Float32Array) => Promise<Float32Array>;
  /** During a shadow run: the candidate beside a live model (scored, compared, never published). */
  shadow?: (live: SequenceModel) => SequenceModel | undefined;
  /** What the candidate scored for the windows the live model scored. */
  onShadow?: (candidate: SequenceModel, pairs: SensorShadowPair[]) => void;
  committedOffset: (topic: string, partition: number) => Promise<bigint | undefined>;
  /** Called just before a commit; throws when this worker may no longer own the partition. */
  beforeCommit: () => Promise<void>;
  /** Live state per input partition (`<topic>:<partition>`), owned by the worker. */
  states: Map<string, LiveState>;
  /** Worker clock for the skew checks. @defaultValue Date.now */
  now?: () => number;
}

/** A partition's live state and the generation of its lane it belongs to (a dropped generation's state is never reused). */
export interface LiveState {
  generation: number;
  state: PartitionState;
}

/** One fetched batch, windowed and scored, with the state it leaves behind: ready to commit. */
export interface PreparedSensor {
  /** The input offset the state was at before this batch (the previous commit's, for the first batch after a restore). */
  base: bigint | undefined;
  /** The input offset after this batch: the state checkpoint below goes with it. */
  next: bigint;
  /** The partition's state after this batch, as its checkpoint. */
  checkpoint: string;
  scores: Message[];
  alerts: Message[];
  deadLetters: Message[];
  outcome: SensorBatchOutcome;
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
  timings: { claimMs: number; inferMs: number };
  /** Event time just after each scored window's last sample (end-to-end latency). */
  windowEnds: number[];
}

export interface SensorCommitOutcome {
  batches: number;
  commitMs: number;
}

/** Redis key namespace of reading / chunk id claims. */
export const sensorDedupeNamespace = (groupId: string) => `dedupe:${groupId}:reading`;

type Record_ = Batch['messages'][number];
type SensorBatch = Pick<Batch, 'topic' | 'partition' | 'messages' | 'lastOffset'>;

interface Accepted {
  message: Record_;
  value: SensorInput;
  model: SequenceModel;
  block: SampleBlock;
  claim: EventClaim;
}

/**
 * The work of one fetched batch before its commit, in offset order per partition (the caller
 * runs a partition's prepares one at a time). The first batch of a lane generation restores the
 * partition's state from the checkpoint written for the group's committed offset and skips
 * records before it. Then: decode and validate every record (invalid ones, unknown assets and
 * late samples become dead letters), claim reading / chunk ids in Redis (re-sends dropped), push
 * samples into each asset's windows in offset order, reconstruct every completed window on the
 * inference pool, score it, run the asset's alert machine, and snapshot the state. Throws on
 * anything but a bad record; the lane then drops the partition's uncommitted batches and the
 * worker drops its state (see {@link LiveState}).
 */
export async function prepareSensor(deps: SensorPipelineDeps, batch: SensorBatch, generation: number): Promise<PreparedSensor> {
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
    windowEnds: [],
    timings: { claimMs: 0, inferMs: 0 },
  };
  const stateKey = `${batch.topic}:${batch.partition}`;
  const t0 = performance.now();
  let live = deps.states.get(stateKey);
  const firstOffset = batch.messages[0] === undefined ? undefined : BigInt(batch.messages[0].offset);
  // A batch that starts before what the state already holds is a re-delivery (the lane dropped
  // uncommitted work): only the checkpoint of the committed offset is right then.
  const reDelivered = live?.state.nextOffset !== undefined && firstOffset !== undefined && firstOffset < live.state.nextOffset;
  if (!live || live.generation !== generation || reDelivered) {
    const committed = await deps.committedOffset(batch.topic, batch.partition);
    const r = await restorePartitionState(deps.redis, { groupId: deps.groupId, topic: batch.topic, partition: batch.partition }, committed, deps.route, deps.windows, deps.logger);
    outcome.restored = { offset: committed === undefined ? null : String(committed), found: r.found, assets: r.state.assets.size, discarded: r.discarded.length };
    const fields = { topic: batch.topic, partition: batch.partition, ...outcome.restored, discardedAssets: r.discarded.slice(0, 20) };
    if (!r.found) deps.logger.warn(fields, 'no checkpoint for the committed offset: assets start with empty windows');
    else if (r.discarded.length > 0) deps.logger.warn(fields, 'partition state restored; some assets start afresh');
    else deps.logger.info(fields, 'partition state restored from its checkpoint');
    live = { generation, state: r.state };
    deps.states.set(stateKey, live);
  }
  const state = live.state;
  const base = state.nextOffset;
  const next = BigInt(batch.lastOffset()) + 1n;
  if (base !== undefined && base > next) {
    // The committed offset is past this whole batch (a previous owner committed more).
    throw new PartitionSeek(base.toString(), `a previous owner committed up to ${base}`);
  }
  const messages = base === undefined ? batch.messages : batch.messages.filter((m) => BigInt(m.offset) >= base);
  outcome.alreadyCommitted = batch.messages.length - messages.length;

  const deadLetters: Message[] = [];
  const reject = (message: Record_, error: ContractViolation) => {
    outcome.deadLettered[error.reason] = (outcome.deadLettered[error.reason] ?? 0) + 1;
    deps.logger.warn({ topic: batch.topic, partition: batch.partition, offset: message.offset, reason: error.reason, field: error.field }, `dead-lettered: ${error.message}`);
    deadLetters.push(encodeDeadLetter({ record: message, source: { topic: batch.topic, partition: batch.partition, offset: message.offset }, error, worker: deps.workerId, at: Date.now() }));
  };

  const clock = now();
  const valid: Accepted[] = [];
  for (const message of messages) {
    const decoded = decodeSensorInput(message, deps.limits);
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
    const block = toSampleBlock(value, model.channels, clock, { ...deps.skew, periodMs: model.periodMs });
    if (!block.ok) {
      reject(message, block.error);
      continue;
    }
    valid.push({ message, value, model, block: block.value, claim: { eventId: sensorEventId(value), position: `${batch.topic}/${batch.partition}/${message.offset}` } });
  }
  const claims = await claimEvents(deps.redis, sensorDedupeNamespace(deps.groupId), valid.map((v) => v.claim), deps.dedupeTtlMs);
  const fresh = valid.filter((_, i) => claims[i] !== 'duplicate');
  outcome.duplicates = valid.length - fresh.length;

  // Samples into windows, in offset order (the order the gateway sent them).
  const completed: { asset: AssetState; window: SensorWindow }[] = [];
  for (const a of fresh) {
    let asset = state.assets.get(a.value.assetId);
    if (!asset) {
      asset = newAssetState(a.value.assetId, a.model, deps.windows);
      state.assets.set(a.value.assetId, asset);
    }
    // A released version takes over the asset's windows and alert state from here on.
    asset.model = a.model;
    const before = asset.windower.stats();
    const pushed = asset.windower.pushBlock(a.block);
    const after = asset.windower.stats();
    outcome.samples += after.accepted - before.accepted;
    outcome.duplicateSamples += pushed.duplicates;
    for (const w of pushed.windows) completed.push({ asset, window: w });
    if (pushed.late.length > 0) {
      outcome.lateSamples += pushed.late.length;
      const first = pushed.late[0]!;
      if (a.value.kind === 'reading') reject(a.message, first.violation);
      else reject(a.message, new ContractViolation('late', `samples.${first.index}`, first.violation.rule, `${pushed.late.length} of ${a.block.rows} samples late, the others were used; first: ${first.violation.message}`));
    }
  }
  // The state now includes this batch; the alert machines advance below, in event-time order.
  state.nextOffset = next;

  const t1 = performance.now();
  outcome.timings.claimMs = t1 - t0;
  const shadowPairs = new Map<SequenceModel, SensorShadowPair[]>();
  let shadowError: unknown;
  // The live model's normalised windows of this batch share one array (one allocation, not one
  // per window); a shadow candidate's get their own.
  const inputs = new Float32Array(completed.reduce((sum, c) => sum + c.window.values.length, 0));
  let used = 0;
  const inputFor = (cellsOfWindow: number): Float32Array => {
    if (used + cellsOfWindow > inputs.length) return new Float32Array(cellsOfWindow);
    used += cellsOfWindow;
    return inputs.subarray(used - cellsOfWindow, used);
  };
  const scoreWith = (m: SequenceModel, window: SensorWindow) => {
    const x = normalise(window.values, m.normalisation, m.channels.length, inputFor(window.values.length)) as Float32Array;
    // The micro-batcher copies x into its batch: x stays this window's own for the scoring below.
    return deps.reconstruct(m, x).then((y) => scoreWindow(x, y, m.size, m.channels.length, m.scoring));
  };
  const scoreCompleted = ({ asset, window }: (typeof completed)[number]) => {
    const m = asset.model;
    const candidate = deps.shadow?.(m);
    const live = scoreWith(m, window);
    // Without a shadow run (the usual case): one chained promise per window, no more.
    if (!candidate) return live.then(({ score, contributions }) => ({ asset, window, score, contributions }));
    // A failing candidate (even one that throws at once) never fails the live scores.
    const other = Promise.resolve(candidate)
      .then((c) => scoreWith(c, window))
      .catch((err: unknown) => void (shadowError ??= err));
    return Promise.all([live, other]).then(([l, o]) => {
      if (o) {
        const pairs = shadowPairs.get(candidate) ?? [];
        pairs.push({ liveScore: l.score, shadowScore: o.score, liveAnomalous: l.score > m.threshold, shadowAnomalous: o.score > candidate.threshold });
        shadowPairs.set(candidate, pairs);
      }
      return { asset, window, score: l.score, contributions: l.contributions };
    });
  };
  const scored = await Promise.all(completed.map(scoreCompleted));
  outcome.timings.inferMs = performance.now() - t1;
  for (const [candidate, pairs] of shadowPairs) deps.onShadow?.(candidate, pairs);
  if (shadowError !== undefined) deps.logger.warn({ err: shadowError }, 'the shadow model failed on some windows of this batch (the live scores stand)');

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
  outcome.windowEnds = scored.map((s) => s.window.windowEnd);
  const checkpoint = serialise(batch.topic, batch.partition, state, next);
  outcome.checkpointBytes = Buffer.byteLength(checkpoint);
  return { base, next, checkpoint, scores, alerts, deadLetters, outcome };
}

/**
 * Commits prepared batches of one partition, oldest first, in one Kafka transaction: the state
 * checkpoint of the last one is written to Redis under its next offset first, then scores,
 * alerts, dead letters and that offset commit together, and the checkpoint they replace is
 * deleted. A fresh producer (first commit of this owner, or after a failure) has just fenced any
 * previous owner: the committed offset is re-read and must be the one the state was restored at;
 * if a fenced zombie committed meanwhile, nothing commits and the partition continues at the
 * new committed offset with its state restored there ({@link PartitionSeek}).
 */
export async function commitSensor(deps: SensorPipelineDeps, prepared: PreparedBatch<LaneBatch, PreparedSensor>[], current: () => boolean): Promise<SensorCommitOutcome> {
  const t0 = performance.now();
  const first = prepared[0]!;
  const last = prepared[prepared.length - 1]!;
  const { topic, partition } = first.batch;
  const txn = await deps.transactions.begin(topic, partition);
  try {
    if (txn.fresh) {
      const committed = await deps.committedOffset(topic, partition);
      if (committed !== first.value.base) {
        throw new PartitionSeek(String(committed ?? first.value.base ?? '0'), `the committed offset moved to ${String(committed)} after the state was restored at ${String(first.value.base)}`);
      }
    }
    await deps.redis.set(checkpointKey(deps.groupId, topic, partition, last.value.next), last.value.checkpoint, 'PX', deps.checkpointTtlMs);
    if (!current()) throw new Error('the partition moved on (failure or rebalance) before this commit');
    // A heartbeat that fails (rebalance in progress, member fenced) means this worker may no
    // longer own the partition: abort rather than commit as a possible zombie.
    await deps.beforeCommit();
    await txn.commit({
      groupId: deps.groupId,
      nextOffset: last.value.next.toString(),
      outputs: [
        { topic: deps.topics.scores, messages: prepared.flatMap((p) => p.value.scores) },
        { topic: deps.topics.alerts, messages: prepared.flatMap((p) => p.value.alerts) },
        { topic: deps.topics.readingsDlq, messages: prepared.flatMap((p) => p.value.deadLetters) },
      ],
    });
  } catch (err) {
    await txn.abort();
    throw err;
  }
  const replaced = first.value.base;
  if (replaced !== undefined && replaced !== last.value.next) {
    // The replaced checkpoint can never be read again; a failure here only leaves it to expire.
    await deps.redis.del(checkpointKey(deps.groupId, topic, partition, replaced)).catch((err: unknown) => deps.logger.debug({ err }, 'old checkpoint not deleted'));
  }
  return { batches: prepared.length, commitMs: performance.now() - t0 };
}
