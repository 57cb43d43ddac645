import type { Batch, Message } from 'kafkajs';
import type { Redis } from 'ioredis';
import { encodeDeadLetter } from '../../../shared/src/contracts/dead-letter.js';
import { ContractViolation, type RejectReason } from '../../../shared/src/contracts/errors.js';
import { decodeFrame, type CameraFrame, type FrameLimits } from '../../../shared/src/contracts/frame.js';
import { encodeDefectEvent, encodeInspection, type Inspection } from '../../../shared/src/contracts/inspection.js';
import type { ModelRef } from '../../../shared/src/contracts/schema-parts.js';
import type { PartitionTransactions } from '../../../shared/src/kafka/partition-transactions.js';
import type { Logger } from '../../../shared/src/log/logger.js';
import { claimEvents } from '../../../shared/src/redis/dedupe.js';
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
}

export interface BatchOutcome {
  consumed: number;
  inspections: number;
  defects: number;
  duplicates: number;
  deadLettered: Partial<Record<RejectReason, number>>;
  /** Where the batch's time went, in ms: validation and claims, pixels to verdicts, commit. */
  timings: { claimMs: number; inferMs: number; commitMs: number };
}

/** Redis key namespace of frame-id claims (per consumer group: two apps may both process a frame). */
export const dedupeNamespace = (groupId: string) => `dedupe:${groupId}:frame`;

/**
 * One input partition's batch, start to commit: decode and validate every record (invalid ones
 * become dead letters), claim frame ids in Redis (re-sends dropped), decode pixels, cut tiles and
 * classify them through the shared micro-batcher, then write inspections, defect events, dead
 * letters and the next input offset in one Kafka transaction. Throws (and commits nothing) on
 * anything but a bad record, so the batch is read again.
 */
export async function processPartitionBatch(
  deps: PipelineDeps,
  batch: Pick<Batch, 'topic' | 'partition' | 'messages' | 'lastOffset'>,
  isStale: () => boolean,
): Promise<BatchOutcome> {
  const receivedAt = Date.now();
  const model = deps.model();
  const outcome: BatchOutcome = {
    consumed: batch.messages.length,
    inspections: 0,
    defects: 0,
    duplicates: 0,
    deadLettered: {},
    timings: { claimMs: 0, inferMs: 0, commitMs: 0 },
  };
  const t0 = performance.now();
  const deadLetters: Message[] = [];
  const reject = (message: Batch['messages'][number], error: ContractViolation) => {
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

  const valid: { message: Batch['messages'][number]; frame: CameraFrame }[] = [];
  for (const message of batch.messages) {
    const r = decodeFrame(message, deps.limits);
    if (r.ok) valid.push({ message, frame: r.value });
    else reject(message, r.error);
  }

  const claims = await claimEvents(
    deps.redis,
    dedupeNamespace(deps.groupId),
    valid.map((v) => ({ eventId: v.frame.frameId, position: `${batch.topic}/${batch.partition}/${v.message.offset}` })),
    deps.dedupeTtlMs,
  );
  const fresh = valid.filter((_, i) => claims[i] !== 'duplicate');
  outcome.duplicates = valid.length - fresh.length;

  const t1 = performance.now();
  outcome.timings.claimMs = t1 - t0;
  const inputSize = model.inputWidth * model.inputHeight;
  const results = await Promise.all(
    fresh.map(async ({ message, frame }) => {
      try {
        const image = await decodePixels(frame);
        const boxes = tileBoxes(image.width, image.height, model.tile, model.stride);
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
          return undefined;
        }
        throw err;
      }
    }),
  );

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

  // A partition revoked meanwhile belongs to another worker now: its transactional producer has
  // fenced ours, and committing would fail anyway. Throwing makes kafkajs drop the batch.
  if (isStale()) throw new Error(`partition ${batch.topic}/${batch.partition} was revoked during the batch; not committing`);
  await deps.transactions.commit({
    groupId: deps.groupId,
    topic: batch.topic,
    partition: batch.partition,
    nextOffset: (BigInt(batch.lastOffset()) + 1n).toString(),
    outputs: [
      { topic: deps.topics.inspections, messages: inspections },
      { topic: deps.topics.defects, messages: defects },
      { topic: deps.topics.framesDlq, messages: deadLetters },
    ],
  });
  outcome.timings.commitMs = performance.now() - t2;
  return outcome;
}
