/**
 * Per-partition state of the sensor worker (every asset's window buffer and alert state) and its
 * Redis checkpoints.
 *
 * Why a checkpoint per committed offset: the state after the records before offset `O` is only
 * right together with input position `O`. A checkpoint is written under the offset its batch
 * commits as the partition's next offset, before the Kafka transaction commits; after a crash or
 * a rebalance the next owner reads the group's committed offset `C` and restores the checkpoint
 * written for `C` exactly, then reads on from `C`. A checkpoint whose transaction never
 * committed is never read (its offset is not a committed one) and expires; the one replaced by a
 * newer commit is deleted. Restoring an older snapshot and replaying would be wrong: samples
 * accepted before would come back as duplicates or late.
 */
import type { Redis } from 'ioredis';
import { createAlertMachine, type AlertMachine } from '../../../../shared/src/anomaly/alerts.js';
import { SnapshotError, isRecord } from '../../../../shared/src/anomaly/snapshot.js';
import type { Logger } from '../../../../shared/src/log/logger.js';
import type { SequenceModel } from '../models.js';
import { createWindower, type Windower } from '../stages/windows.js';

/** One asset's live state. */
export interface AssetState {
  model: SequenceModel;
  windower: Windower;
  alerts: AlertMachine;
}

/** Windowing settings that apply to every asset, whatever its model. */
export interface WindowSettings {
  allowedLatenessMs: number;
  maxGapMs: number;
  gridOriginMs?: number;
}

/** The state of one input partition, valid for the records before `nextOffset`. */
export interface PartitionState {
  /** The input offset this state is valid before; undefined before anything was committed. */
  nextOffset: bigint | undefined;
  assets: Map<string, AssetState>;
}

interface CheckpointJson {
  kind: 'sensor-partition-state';
  version: 1;
  topic: string;
  partition: number;
  offset: string;
  assets: Record<string, { model: string; windower: unknown; alerts: unknown }>;
}

/** Redis key of the checkpoint that goes with input position `offset`. */
export const checkpointKey = (groupId: string, topic: string, partition: number, offset: bigint) => `sensor-state:${groupId}:${topic}:${partition}:${offset}`;

export function newAssetState(assetId: string, model: SequenceModel, w: WindowSettings): AssetState {
  return {
    model,
    windower: createWindower({
      assetId,
      channels: model.channels.length,
      size: model.size,
      hop: model.hop,
      periodMs: model.periodMs,
      allowedLatenessMs: w.allowedLatenessMs,
      maxGapMs: Math.max(w.maxGapMs, model.periodMs),
      ...(w.gridOriginMs === undefined ? {} : { gridOriginMs: w.gridOriginMs }),
    }),
    alerts: createAlertMachine({ assetId, ...model.alerting }),
  };
}

export function serialise(topic: string, partition: number, state: PartitionState, offset: bigint): string {
  const json: CheckpointJson = { kind: 'sensor-partition-state', version: 1, topic, partition, offset: String(offset), assets: {} };
  for (const [assetId, a] of state.assets) json.assets[assetId] = { model: a.model.key, windower: a.windower.snapshot(), alerts: a.alerts.snapshot() };
  return JSON.stringify(json);
}

export interface RestoreReport {
  state: PartitionState;
  /** The checkpoint was found and read. */
  found: boolean;
  /** Assets whose saved state did not fit (model or settings changed): they start afresh. */
  discarded: string[];
}

/**
 * The state for input position `offset` (undefined: nothing committed yet, an empty state). A
 * missing checkpoint gives an empty state and `found: false`: the assets lose at most one
 * window of history (logged by the caller). An asset whose saved state does not fit its current
 * model or settings starts afresh the same way.
 */
export async function restorePartitionState(
  redis: Redis,
  key: { groupId: string; topic: string; partition: number },
  offset: bigint | undefined,
  route: (assetId: string) => SequenceModel | undefined,
  w: WindowSettings,
  logger: Logger,
): Promise<RestoreReport> {
  const state: PartitionState = { nextOffset: offset, assets: new Map() };
  if (offset === undefined) return { state, found: true, discarded: [] };
  const raw = await redis.get(checkpointKey(key.groupId, key.topic, key.partition, offset));
  if (raw === null) return { state, found: false, discarded: [] };
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    json = undefined;
  }
  if (!isRecord(json) || json.kind !== 'sensor-partition-state' || json.version !== 1 || !isRecord(json.assets)) {
    logger.warn({ ...key, offset: String(offset) }, 'checkpoint is not a sensor partition state; starting afresh');
    return { state, found: false, discarded: [] };
  }
  const discarded: string[] = [];
  for (const [assetId, saved] of Object.entries(json.assets)) {
    const model = route(assetId);
    // Another version of the same model (a promote or rollback since the checkpoint) carries on:
    // versions a worker switches between share window, channels and sample period.
    if (!model || !isRecord(saved) || typeof saved.model !== 'string' || saved.model.split('@')[0] !== model.manifest.name) {
      discarded.push(assetId);
      continue;
    }
    const asset = newAssetState(assetId, model, w);
    try {
      asset.windower.restore(saved.windower);
      asset.alerts.restore(saved.alerts);
    } catch (err) {
      if (!(err instanceof SnapshotError)) throw err;
      logger.warn({ assetId, err: err.message }, 'asset checkpoint does not fit the current settings; the asset starts afresh');
      discarded.push(assetId);
      continue;
    }
    state.assets.set(assetId, asset);
  }
  return { state, found: true, discarded };
}
