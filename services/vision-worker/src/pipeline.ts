import type { Batch, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import { encodeDeadLetter } from '../../../shared/src/contracts/dead-letter.js';
import { ContractViolation, type RejectReason } from '../../../shared/src/contracts/errors.js';
import { decodeFrame, type CameraFrame, type FrameLimits } from '../../../shared/src/contracts/frame.js';
import { encodeDefectEvent, encodeInspection, type Inspection } from '../../../shared/src/contracts/inspection.js';
import type { ModelRef } from '../../../shared/src/contracts/schema-parts.js';
import type { PartitionTransactions } from '../../../shared/src/kafka/partition-transactions.js';
import { PartitionSeek, type LaneBatch, type PreparedBatch } from '../../../shared/src/worker/partition-lanes.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { claimEvents, releaseClaims, type EventClaim } from '../../../shared/src/redis/dedupe.js';
import type { ByteBudget } from '../../../shared/src/pipeline/byte-budget.js';
import { tileBoxes, tileToInput, type Normalisation } from '../../../shared/src/vision/tiles.js';
import type { VisionShadowPair } from '../../../shared/src/models/shadow.js';
import { classifyFrame, type ClassifierSettings } from './stages/classify.js';
import { decodePixels } from './stages/decode-pixels.js';

/** The served model as the pipeline needs it. */
export interface ServedModel {
  ref: ModelRef;
  inputWidth: number;
  inputHeight: number;
  normalisation: Normalisation;
  /** Tile side and stride in frame pixels (Infinity: the whole frame is one input). */
  tile: number;
  stride: number;
  classifier: ClassifierSettings;
}

/** A served model and the way to its micro-batcher: one tile's input in, class probabilities out. */
export interface ModelInUse {
  served: ServedModel;
  infer: (input: Float32Array) => Promise<Float32Array>;
}

export interface PipelineDeps {
  workerId: string;
  groupId: string;
  topics: { inspections: string; defects: string; framesDlq: string };
  limits: FrameLimits;
  dedupeTtlMs: number;
  redis: Redis;
  transactions: PartitionTransactions;
  logger: Logger;
  /**
   * The live model and, during a shadow run, the candidate: taken once when a batch starts, so a
   * batch is judged by one version whatever is released meanwhile.
   */
  models: () => { live: ModelInUse; shadow?: ModelInUse };
  /** What the candidate said of the frames the live model judged (never published). */
  onShadow?: (candidate: ServedModel, pairs: VisionShadowPair[]) => void;
  /** The group's committed offset of an input partition (undefined when none). */
  committedOffset: (topic: string, partition: number) => Promise<bigint | undefined>;
  /** Called just before a commit; throws when this worker may no longer own the partition. */
  beforeCommit: () => Promise<void>;
  /** Bounds decoded pixels and tile inputs held at once across all partitions. */
  budget: ByteBudget;
}

/** One input record's outputs, kept apart so that records a previous owner committed can be left out. */
interface RecordOutputs {
  offset: bigint;
  messages: { topic: 'inspections' | 'defects' | 'framesDlq'; message: Message }[];
  /** Capture time of a frame that got an inspection (end-to-end latency). */
  capturedAt?: number;
}

/** A fetched batch, decoded, deduplicated and classified: ready to commit. */
export interface PreparedFrames {
  consumed: number;
  duplicates: number;
  deadLettered: Partial<Record<RejectReason, number>>;
  records: RecordOutputs[];
  /** Where the batch's time went, in ms: validation and claims, pixels to verdicts. */
  timings: { claimMs: number; inferMs: number };
}

export interface CommitOutcome {
  batches: number;
  inspections: number;
  defects: number;
  deadLetters: number;
  /** Records left out because the partition's committed offset was already past them. */
  alreadyCommitted: number;
  commitMs: number;
}

/** Redis key namespace of frame-id claims (per consumer group: two apps may both process a frame). */
export const dedupeNamespace = (groupId: string) => `dedupe:${groupId}:frame`;

type Record_ = Batch['messages'][number];
type FrameBatch = Pick<Batch, 'topic' | 'partition' | 'messages' | 'lastOffset'>;

/**
 * The work of one fetched batch before its commit: decode and validate every record (invalid
 * ones become dead letters), claim frame ids in Redis (re-sends dropped), decode pixels, cut
 * tiles and classify them through the shared micro-batcher. Throws on anything but a bad record
 * (Redis, the engine): the batch is then read again.
 */
export async function prepareFrames(deps: PipelineDeps, batch: FrameBatch): Promise<PreparedFrames> {
  const receivedAt = Date.now();
  const { live, shadow } = deps.models();
  const model = live.served;
  const shadowPairs: VisionShadowPair[] = [];
  let shadowError: unknown;
  const out: PreparedFrames = { consumed: batch.messages.length, duplicates: 0, deadLettered: {}, records: [], timings: { claimMs: 0, inferMs: 0 } };
  const t0 = performance.now();
  const deadLetter = (message: Record_, error: ContractViolation): RecordOutputs => {
    out.deadLettered[error.reason] = (out.deadLettered[error.reason] ?? 0) + 1;
    deps.logger.warn(
      { topic: batch.topic, partition: batch.partition, offset: message.offset, reason: error.reason, field: error.field },
      `dead-lettered: ${error.message}`,
    );
    const record = encodeDeadLetter({ record: message, source: { topic: batch.topic, partition: batch.partition, offset: message.offset }, error, worker: deps.workerId, at: Date.now() });
    return { offset: BigInt(message.offset), messages: [{ topic: 'framesDlq', message: record }] };
  };

  const rejected: RecordOutputs[] = [];
  const valid: { message: Record_; frame: CameraFrame; claim: EventClaim }[] = [];
  for (const message of batch.messages) {
    const r = decodeFrame(message, deps.limits);
    if (r.ok) valid.push({ message, frame: r.value, claim: { eventId: r.value.frameId, position: `${batch.topic}/${batch.partition}/${message.offset}` } });
    else rejected.push(deadLetter(message, r.error));
  }
  const namespace = dedupeNamespace(deps.groupId);
  const claims = await claimEvents(deps.redis, namespace, valid.map((v) => v.claim), deps.dedupeTtlMs);
  const fresh = valid.filter((_, i) => claims[i] !== 'duplicate');
  out.duplicates = valid.length - fresh.length;

  const t1 = performance.now();
  out.timings.claimMs = t1 - t0;
  const inputSize = model.inputWidth * model.inputHeight;
  const unprocessable: EventClaim[] = [];
  const classified = await Promise.all(
    fresh.map(async ({ message, frame, claim }): Promise<RecordOutputs> => {
      const boxes = tileBoxes(frame.width, frame.height, model.tile, model.stride);
      // Decoded pixels plus every tile's float input: what this frame holds until its verdict.
      const bytes = frame.width * frame.height + boxes.length * inputSize * 4;
      await deps.budget.acquire(bytes);
      let verdict;
      try {
        const image = await decodePixels(frame);
        const inputs = boxes.map((box) => {
          const input = new Float32Array(inputSize);
          tileToInput(image.pixels, image.width, box, model.inputWidth, model.inputHeight, model.normalisation, input, 0);
          return input;
        });
        // The batcher copies each input into its batch, so the candidate can take the same ones.
        const [probs, shadowProbs] = await Promise.all([Promise.all(inputs.map((x) => live.infer(x))), shadow ? Promise.all(inputs.map((x) => shadow.infer(x))).catch((err: unknown) => void (shadowError ??= err)) : undefined]);
        verdict = classifyFrame(boxes, probs, model.classifier);
        if (shadow && shadowProbs) {
          const other = classifyFrame(boxes, shadowProbs, shadow.served.classifier);
          shadowPairs.push({
            liveLabel: verdict.label,
            shadowLabel: other.label,
            liveVerdict: verdict.verdict,
            shadowVerdict: other.verdict,
            liveTiles: verdict.tiles.map((t) => t.label),
            shadowTiles: other.tiles.map((t) => t.label),
          });
        }
      } catch (err) {
        if (err instanceof ContractViolation) {
          unprocessable.push(claim);
          return deadLetter(message, err);
        }
        throw err;
      } finally {
        deps.budget.release(bytes);
      }
      const inspection: Inspection = {
        frameId: frame.frameId,
        cameraId: frame.cameraId,
        lineId: frame.lineId,
        capturedAt: frame.capturedAt,
        verdict: verdict.verdict,
        label: verdict.label,
        confidence: verdict.confidence,
        ...(verdict.tiles.length > 1 ? { tiles: verdict.tiles } : {}),
        model: model.ref,
        processing: { worker: deps.workerId, receivedAt, producedAt: Date.now() },
      };
      const messages: RecordOutputs['messages'] = [{ topic: 'inspections', message: encodeInspection(inspection) }];
      if (inspection.verdict === 'defect') messages.push({ topic: 'defects', message: encodeDefectEvent({ ...inspection, verdict: 'defect' }) });
      return { offset: BigInt(message.offset), messages, capturedAt: frame.capturedAt };
    }),
  );
  // An intact re-send of a frame whose first copy was corrupt must not count as its duplicate.
  await releaseClaims(deps.redis, namespace, unprocessable);
  out.records = [...rejected, ...classified].sort((a, b) => (a.offset < b.offset ? -1 : a.offset > b.offset ? 1 : 0));
  out.timings.inferMs = performance.now() - t1;
  if (shadow && shadowPairs.length > 0) deps.onShadow?.(shadow.served, shadowPairs);
  if (shadowError !== undefined) deps.logger.warn({ err: shadowError, shadow: shadow?.served.ref }, 'the shadow model failed on some frames of this batch (the live results stand)');
  return out;
}

/**
 * Commits prepared batches of one input partition, oldest first, in one Kafka transaction:
 * inspections, defect events, dead letters and the next input offset. A transaction whose
 * producer is fresh (first of this owner, or after a failure) has just fenced any previous owner;
 * the committed offset is then re-read and records a fenced zombie already committed are left
 * out. When the committed offset is past everything here, nothing is committed and the
 * partition is sought forward to it ({@link PartitionSeek}).
 */
export async function commitFrames(deps: PipelineDeps, prepared: PreparedBatch<LaneBatch, PreparedFrames>[], current: () => boolean): Promise<CommitOutcome> {
  const t0 = performance.now();
  const first = prepared[0]!.batch;
  const last = prepared[prepared.length - 1]!.batch;
  const nextOffset = BigInt(last.lastOffset()) + 1n;
  const txn = await deps.transactions.begin(first.topic, first.partition);
  try {
    let records = prepared.flatMap((p) => p.value.records);
    const total = records.length;
    if (txn.fresh) {
      const committed = await deps.committedOffset(first.topic, first.partition);
      if (committed !== undefined && committed > nextOffset) {
        await txn.abort();
        throw new PartitionSeek(committed.toString(), `a previous owner committed up to ${committed}`);
      }
      if (committed !== undefined) records = records.filter((r) => r.offset >= committed);
      if (records.length < total) {
        deps.logger.warn({ topic: first.topic, partition: first.partition, skipped: total - records.length, committed: String(committed) }, 'leaving out records a previous owner already committed');
      }
    }
    const outputs = { inspections: [] as Message[], defects: [] as Message[], framesDlq: [] as Message[] };
    for (const r of records) for (const m of r.messages) outputs[m.topic].push(m.message);
    // A heartbeat that fails (rebalance in progress, member fenced) means this worker may no
    // longer own the partition: abort rather than commit as a possible zombie.
    if (!current()) throw new Error('the partition moved on (failure or rebalance) before this commit');
    await deps.beforeCommit();
    await txn.commit({
      groupId: deps.groupId,
      nextOffset: nextOffset.toString(),
      outputs: [
        { topic: deps.topics.inspections, messages: outputs.inspections },
        { topic: deps.topics.defects, messages: outputs.defects },
        { topic: deps.topics.framesDlq, messages: outputs.framesDlq },
      ],
    });
    return {
      batches: prepared.length,
      inspections: outputs.inspections.length,
      defects: outputs.defects.length,
      deadLetters: outputs.framesDlq.length,
      alreadyCommitted: total - records.length,
      commitMs: performance.now() - t0,
    };
  } catch (err) {
    await txn.abort();
    throw err;
  }
}
