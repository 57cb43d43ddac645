import type { Batch, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import { encodeDeadLetter } from '../../../shared/src/contracts/dead-letter.js';
import { ContractViolation, type RejectReason } from '../../../shared/src/contracts/errors.js';
import { decodeFrame, type CameraFrame, type FrameLimits } from '../../../shared/src/contracts/frame.js';
import { encodeDefectEvent, encodeInspection, type Inspection } from '../../../shared/src/contracts/inspection.js';
import type { ModelRef } from '../../../shared/src/contracts/schema-parts.js';
import type { PartitionTransactions } from '../../../shared/src/kafka/partition-transactions.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { claimEvents, releaseClaims, type EventClaim } from '../../../shared/src/redis/dedupe.js';
import type { ByteBudget } from '../../../shared/src/pipeline/byte-budget.js';
import { tileBoxes, tileToInput, type Normalisation } from '../../../shared/src/vision/tiles.js';
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

export interface PipelineDeps {
  workerId: string;
  groupId: string;
  topics: { inspections: string; defects: string; framesDlq: string };
  limits: FrameLimits;
  dedupeTtlMs: number;
  redis: Redis;
  transactions: PartitionTransactions;
  logger: Logger;
  model: () => ServedModel;
  /** One tile's model input in, its class probabilities out (through the micro-batcher). */
  inferTile: (input: Float32Array) => Promise<Float32Array>;
  /** The group's committed offset of an input partition (undefined when none). */
  committedOffset: (topic: string, partition: number) => Promise<bigint | undefined>;
  /** Called just before the commit; throws when this worker may no longer own the partition. */
  beforeCommit: () => Promise<void>;
  /** Bounds decoded pixels and tile inputs held at once across all partitions. */
  budget: ByteBudget;
}

export interface BatchOutcome {
  consumed: number;
  inspections: number;
  defects: number;
  duplicates: number;
  /** Records skipped because the partition's committed offset was already past them. */
  alreadyCommitted: number;
  deadLettered: Partial<Record<RejectReason, number>>;
  /** Where the batch's time went, in ms: validation and claims, pixels to verdicts, commit. */
  timings: { claimMs: number; inferMs: number; commitMs: number };
}

/** Redis key namespace of frame-id claims (per consumer group: two apps may both process a frame). */
export const dedupeNamespace = (groupId: string) => `dedupe:${groupId}:frame`;

type Record_ = Batch['messages'][number];

/**
 * One input partition's batch, start to commit. The partition's transaction begins first: for a
 * fresh producer that fences any previous owner, after which the committed offset is re-read
 * and records a fenced zombie already committed are skipped. Then: decode and validate every
 * record (invalid ones become dead letters), claim frame ids in Redis (re-sends dropped), decode
 * pixels, cut tiles and classify them through the shared micro-batcher, and commit inspections,
 * defect events, dead letters and the next input offset together. Throws (and commits nothing)
 * on anything but a bad record, so the batch is read again.
 */
export async function processPartitionBatch(
  deps: PipelineDeps,
  batch: Pick<Batch, 'topic' | 'partition' | 'messages' | 'lastOffset'>,
): Promise<BatchOutcome> {
  const receivedAt = Date.now();
  const model = deps.model();
  const outcome: BatchOutcome = {
    consumed: batch.messages.length,
    inspections: 0,
    defects: 0,
    duplicates: 0,
    alreadyCommitted: 0,
    deadLettered: {},
    timings: { claimMs: 0, inferMs: 0, commitMs: 0 },
  };
  const t0 = performance.now();
  const txn = await deps.transactions.begin(batch.topic, batch.partition);
  try {
    let messages = batch.messages;
    if (txn.fresh) {
      const committed = await deps.committedOffset(batch.topic, batch.partition);
      if (committed !== undefined) messages = messages.filter((m) => BigInt(m.offset) >= committed);
      outcome.alreadyCommitted = batch.messages.length - messages.length;
      if (outcome.alreadyCommitted > 0) {
        deps.logger.warn({ topic: batch.topic, partition: batch.partition, skipped: outcome.alreadyCommitted, committed: String(committed) }, 'skipping records a previous owner already committed');
      }
    }

    const deadLetters: Message[] = [];
    const reject = (message: Record_, error: ContractViolation) => {
      outcome.deadLettered[error.reason] = (outcome.deadLettered[error.reason] ?? 0) + 1;
      deps.logger.warn(
        { topic: batch.topic, partition: batch.partition, offset: message.offset, reason: error.reason, field: error.field },
        `dead-lettered: ${error.message}`,
      );
      deadLetters.push(
        encodeDeadLetter({
          record: message,
          source: { topic: batch.topic, partition: batch.partition, offset: message.offset },
          error,
          worker: deps.workerId,
          at: Date.now(),
        }),
      );
    };

    const valid: { message: Record_; frame: CameraFrame; claim: EventClaim }[] = [];
    for (const message of messages) {
      const r = decodeFrame(message, deps.limits);
      if (r.ok) valid.push({ message, frame: r.value, claim: { eventId: r.value.frameId, position: `${batch.topic}/${batch.partition}/${message.offset}` } });
      else reject(message, r.error);
    }
    const namespace = dedupeNamespace(deps.groupId);
    const claims = await claimEvents(deps.redis, namespace, valid.map((v) => v.claim), deps.dedupeTtlMs);
    const fresh = valid.filter((_, i) => claims[i] !== 'duplicate');
    outcome.duplicates = valid.length - fresh.length;

    const t1 = performance.now();
    outcome.timings.claimMs = t1 - t0;
    const inputSize = model.inputWidth * model.inputHeight;
    const unprocessable: EventClaim[] = [];
    const results = await Promise.all(
      fresh.map(async ({ message, frame, claim }) => {
        const boxes = tileBoxes(frame.width, frame.height, model.tile, model.stride);
        // Decoded pixels plus every tile's float input: what this frame holds until its verdict.
        const bytes = frame.width * frame.height + boxes.length * inputSize * 4;
        await deps.budget.acquire(bytes);
        try {
          const image = await decodePixels(frame);
          const probs = await Promise.all(
            boxes.map((box) => {
              const input = new Float32Array(inputSize);
              tileToInput(image.pixels, image.width, box, model.inputWidth, model.inputHeight, model.normalisation, input, 0);
              return deps.inferTile(input);
            }),
          );
          return { message, frame, verdict: classifyFrame(boxes, probs, model.classifier) };
        } catch (err) {
          if (err instanceof ContractViolation) {
            reject(message, err);
            unprocessable.push(claim);
            return undefined;
          }
          throw err;
        } finally {
          deps.budget.release(bytes);
        }
      }),
    );
    // An intact re-send of a frame whose first copy was corrupt must not count as its duplicate.
    await releaseClaims(deps.redis, namespace, unprocessable);

    const t2 = performance.now();
    outcome.timings.inferMs = t2 - t1;
    const inspections: Message[] = [];
    const defects: Message[] = [];
    for (const r of results) {
      if (!r) continue;
      const inspection: Inspection = {
        frameId: r.frame.frameId,
        cameraId: r.frame.cameraId,
        lineId: r.frame.lineId,
        capturedAt: r.frame.capturedAt,
        verdict: r.verdict.verdict,
        label: r.verdict.label,
        confidence: r.verdict.confidence,
        ...(r.verdict.tiles.length > 1 ? { tiles: r.verdict.tiles } : {}),
        model: model.ref,
        processing: { worker: deps.workerId, receivedAt, producedAt: Date.now() },
      };
      inspections.push(encodeInspection(inspection));
      if (inspection.verdict === 'defect') defects.push(encodeDefectEvent({ ...inspection, verdict: 'defect' }));
    }
    outcome.inspections = inspections.length;
    outcome.defects = defects.length;

    // A heartbeat that fails (rebalance in progress, member fenced) means this worker may no
    // longer own the partition: abort rather than commit as a possible zombie.
    await deps.beforeCommit();
    await txn.commit({
      groupId: deps.groupId,
      nextOffset: (BigInt(batch.lastOffset()) + 1n).toString(),
      outputs: [
        { topic: deps.topics.inspections, messages: inspections },
        { topic: deps.topics.defects, messages: defects },
        { topic: deps.topics.framesDlq, messages: deadLetters },
      ],
    });
    outcome.timings.commitMs = performance.now() - t2;
    return outcome;
  } catch (err) {
    await txn.abort();
    throw err;
  }
}
