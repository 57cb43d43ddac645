/** The sensor models the trainer knows (`npm run train:sensor -- --model <name>`, `npm run evaluate`). */
import { NAB_MACHINE_TEMP } from './sensor-nab.js';
import { TEP_LSTM_AE } from './sensor-tep.js';
import { SIM_ASSET_LSTM_AE, type SensorModel } from './sensor-train.js';

export const SENSOR_MODELS: Record<string, SensorModel> = Object.fromEntries([SIM_ASSET_LSTM_AE, TEP_LSTM_AE, NAB_MACHINE_TEMP].map((m) => [m.name, m]));
