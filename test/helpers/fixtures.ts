import type { AlertEvent, AnomalyScore } from '../../shared/src/contracts/anomaly.js';
import type { Inspection } from '../../shared/src/contracts/inspection.js';

/** Valid example outputs; tests vary one field at a time from these. */
export const model = { name: 'surface-cnn', version: '1.0.0', engine: 'tfjs-wasm' };
export const processing = { worker: 'vision-worker-1', receivedAt: 1_764_000_000_050, producedAt: 1_764_000_000_080 };

export const inspection: Inspection = {
  frameId: 'f-0001',
  cameraId: 'line-1/cam-1',
  lineId: 'line-1',
  capturedAt: 1_764_000_000_000,
  verdict: 'defect',
  label: 'scratch',
  confidence: 0.97,
  tiles: [
    { box: { x: 0, y: 0, width: 64, height: 64 }, label: 'ok', confidence: 0.99, defective: false },
    { box: { x: 64, y: 0, width: 64, height: 64 }, label: 'scratch', confidence: 0.97, defective: true },
  ],
  model,
  processing,
};

export const anomalyScore: AnomalyScore = {
  assetId: 'pump-7',
  windowId: 'pump-7@1764000000000',
  windowStart: 1_764_000_000_000,
  windowEnd: 1_764_000_006_400,
  score: 3.2,
  threshold: 1.5,
  anomalous: true,
  contributions: { vibration: 2.5, temperature: 0.7 },
  afterGap: false,
  model: { name: 'sim-asset-lstm-ae', version: '1.0.0', engine: 'tfjs-wasm' },
  processing,
};

export const alertEvent: AlertEvent = {
  alertId: 'pump-7@1764000000000',
  assetId: 'pump-7',
  state: 'raised',
  at: 1_764_000_006_400,
  windowId: 'pump-7@1764000000000',
  score: 3.2,
  threshold: 1.5,
  topChannels: [
    { channel: 'vibration', contribution: 2.5 },
    { channel: 'temperature', contribution: 0.7 },
  ],
  model: { name: 'sim-asset-lstm-ae', version: '1.0.0', engine: 'tfjs-wasm' },
  processing,
};
