export { BoundedList, BoundedMap } from './bounded-list.js';
export { AlertBook, type AlertBookOptions, type AlertView } from './alerts.js';
export { AndonBoard, describeDelivery, type AndonDelivery } from './andon.js';
export { ConsoleState, DEFAULT_STATE_OPTIONS, type ConsoleSnapshot, type ConsoleStateOptions, type ReadCounters } from './console-state.js';
export { DefectLog, type DefectView } from './defects.js';
export { DefectRates, type DefectRateOptions, type LineRateSeries, type RateBucket } from './defect-rates.js';
export { histogramBuckets, parsePrometheus, quantileOf, summariseWorker, type MetricSample, type ScrapeMemory, type WorkerRow, type WorkerScrape } from './fleet.js';
export { FrameStore, frameView, type CameraView, type FrameStoreOptions, type FrameView, type HeldFrame } from './frames.js';
export { ScoreSeries, type AssetScoreSeries, type ScorePoint, type ScoreSeriesOptions } from './scores.js';
