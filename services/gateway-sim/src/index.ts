/**
 * The gateway simulator as a library: pure generators (plans) for camera frames and sensor
 * messages with ground truth, the truth parsers for scoring, and the Kafka runner behind
 * `npm run sim`.
 */
export { createRng, hashSeed, type Rng, type SeedPart } from './rng.js';
export type { PlannedRecord, RecordPlan } from './plan.js';
export {
  IMAGE_FORMATS,
  createFramePlan,
  resolveFramePlanOptions,
  type CameraSpec,
  type FramePlan,
  type FramePlanOptions,
  type ImageFormat,
  type PlannedFrame,
  type RenderedFrame,
  type ResolvedFramePlanOptions,
} from './camera/frame-plan.js';
export { DEFECT_KINDS, VISIBLE_DELTA, type Box, type DefectKind } from './camera/defects.js';
export { SURFACE_FINISHES, type CameraLook, type SurfaceFinish } from './camera/surface.js';
export {
  SENSOR_FORMATS,
  createSensorPlan,
  resolveSensorPlanOptions,
  type AssetSpec,
  type PlannedSensorMessage,
  type ResolvedSensorPlanOptions,
  type SensorFormat,
  type SensorPlan,
  type SensorPlanOptions,
} from './sensors/sensor-plan.js';
export { CHANNEL_INFO, SENSOR_CHANNELS, type AssetProfile, type ChannelInfo, type SensorChannel } from './sensors/assets.js';
export { ANOMALY_KINDS, type AnomalyKind } from './sensors/anomalies.js';
export {
  SIM_TRUTH_HEADER,
  anomaliesAt,
  boxOverlap,
  defectsInRegion,
  encodeFrameTruth,
  encodeSensorTruth,
  frameTruthSchema,
  parseFrameTruth,
  parseSensorTruth,
  sensorTruthSchema,
  truthHeaderText,
  type AnomalyTruth,
  type DefectTruth,
  type FrameTruth,
  type SensorTruth,
} from './truth.js';
export { USAGE, parseDurationMs, parseSimArgs, parseStart, type ParsedArgs, type SimConfig, type StreamConfig } from './config.js';
export { ConfigError, SimulatorError } from './errors.js';
export { runSimulator, type RunOptions, type SimSummary } from './producer.js';
