import type { Rng } from '../rng.js';

/**
 * The channels every simulated asset reports: a motor-driven centrifugal pump on a variable
 * speed drive, a common instrumented asset on a line (coolant, hydraulics, wash water).
 */
export const SENSOR_CHANNELS = ['current', 'speed', 'vibration', 'temperature', 'bearing_temp', 'pressure', 'flow', 'power'] as const;
export type SensorChannel = (typeof SENSOR_CHANNELS)[number];

export interface ChannelInfo {
  unit: string;
  /** Decimals the gateway reports (its ADC / fieldbus resolution). */
  decimals: number;
}

export const CHANNEL_INFO: Readonly<Record<SensorChannel, ChannelInfo>> = {
  current: { unit: 'A', decimals: 2 },
  speed: { unit: 'rpm', decimals: 1 },
  vibration: { unit: 'mm/s RMS', decimals: 3 },
  temperature: { unit: 'degC (motor winding)', decimals: 2 },
  bearing_temp: { unit: 'degC', decimals: 2 },
  pressure: { unit: 'bar (discharge)', decimals: 3 },
  flow: { unit: 'm3/h', decimals: 2 },
  power: { unit: 'kW', decimals: 2 },
};

/** Position of each channel in a sample row (the order of {@link SENSOR_CHANNELS}). */
export const CHANNEL_INDEX: Readonly<Record<SensorChannel, number>> = Object.fromEntries(
  SENSOR_CHANNELS.map((c, i) => [c, i]),
) as Record<SensorChannel, number>;

/**
 * The fixed character of one asset: its nameplate and installation. Drawn from the seed and
 * asset id only, so an asset behaves alike in every run with the same seed.
 */
export interface AssetProfile {
  ratedCurrent: number;
  ratedSpeed: number;
  ratedPressure: number;
  ratedFlow: number;
  ratedPower: number;
  /** Share of the rated load while idling (recirculation at low speed). */
  idleLoad: number;
  /** Load while running, before process demand varies it. */
  runLoad: number;
  /** Duty cycle: seconds per run+idle cycle and the running share. */
  cycleSeconds: number;
  dutyFraction: number;
  /** Winding temperature rise over ambient at rated current, and its thermal time constant. */
  windingRise: number;
  windingTauSeconds: number;
  bearingRise: number;
  bearingTauSeconds: number;
  /** Mean ambient temperature; it swings +-2.5 degC over the day. */
  ambient: number;
  /** Vibration floor and the part that grows with speed squared (mm/s). */
  vibrationBase: number;
  vibrationGain: number;
}

export function drawAssetProfile(rng: Rng): AssetProfile {
  const ratedCurrent = rng.range(20, 60);
  return {
    ratedCurrent,
    // 4-pole or 2-pole motors on 50 Hz.
    ratedSpeed: rng.pick([1480, 2960]),
    ratedPressure: rng.range(3, 8),
    ratedFlow: rng.range(20, 120),
    // P = sqrt(3) * 400 V * I * cos(phi) 0.85, in kW.
    ratedPower: (Math.sqrt(3) * 400 * ratedCurrent * 0.85) / 1000,
    idleLoad: rng.range(0.25, 0.4),
    runLoad: rng.range(0.75, 0.95),
    cycleSeconds: rng.range(40, 180),
    dutyFraction: rng.range(0.55, 0.85),
    windingRise: rng.range(35, 60),
    windingTauSeconds: rng.range(300, 900),
    bearingRise: rng.range(15, 25),
    bearingTauSeconds: rng.range(600, 1200),
    ambient: rng.range(20, 28),
    vibrationBase: rng.range(0.6, 1.2),
    vibrationGain: rng.range(1, 2.5),
  };
}

/** Typical span of each channel for an asset: scales anomaly sizes to the asset. */
export function channelScale(profile: AssetProfile): Record<SensorChannel, number> {
  return {
    current: profile.ratedCurrent,
    speed: profile.ratedSpeed,
    vibration: profile.vibrationBase + profile.vibrationGain,
    temperature: profile.windingRise,
    bearing_temp: profile.bearingRise,
    pressure: profile.ratedPressure,
    flow: profile.ratedFlow,
    power: profile.ratedPower,
  };
}

const DAY_MS = 86_400_000;
/** Seconds for the drive to follow a speed change (its ramp). */
const RAMP_TAU_SECONDS = 2;
/** Process demand wanders around the run load with this correlation time. */
const DEMAND_TAU_SECONDS = 30;

export interface AssetSimulator {
  /** Index of the next sample. */
  readonly sampleIndex: number;
  /** The next sample's true values in {@link SENSOR_CHANNELS} order; advances one period. */
  step(): Float64Array;
}

/**
 * Normal behaviour of one asset, one sample per `periodMs` of event time from `start`:
 * - a duty cycle (run / idle with jittered phase lengths) and a drive that ramps between them;
 * - pump affinity laws: flow ~ speed, pressure ~ speed^2, power ~ speed^3; motor current from
 *   power plus magnetising current;
 * - winding temperature as a first-order lag (minutes) towards ambient + rise * (I/I_rated)^2,
 *   bearing temperature slower still, ambient following the time of day;
 * - vibration growing with speed squared; measurement noise on every channel.
 * Anomalies are overlays applied afterwards (see anomalies.ts), so this stream is the same with
 * or without them.
 */
export function createAssetSimulator(profile: AssetProfile, rng: Rng, start: number, periodMs: number): AssetSimulator {
  const dt = periodMs / 1000;
  const rampAlpha = 1 - Math.exp(-dt / RAMP_TAU_SECONDS);
  const windingAlpha = 1 - Math.exp(-dt / profile.windingTauSeconds);
  const bearingAlpha = 1 - Math.exp(-dt / profile.bearingTauSeconds);
  const demandAlpha = 1 - Math.exp(-dt / DEMAND_TAU_SECONDS);
  // Ornstein-Uhlenbeck demand: stationary std 0.05 of rated load.
  const demandNoise = 0.05 * Math.sqrt(1 - (1 - demandAlpha) ** 2);
  const ambientPhase = rng.range(-0.3, 0.3);
  const ambientAt = (t: number): number => profile.ambient + 2.5 * Math.sin((2 * Math.PI * (t % DAY_MS)) / DAY_MS - Math.PI / 2 - 0.8 + ambientPhase);

  const phaseLength = (running: boolean): number =>
    profile.cycleSeconds * (running ? profile.dutyFraction : 1 - profile.dutyFraction) * rng.range(0.8, 1.2);
  let running = rng.chance(profile.dutyFraction);
  let phaseLeft = phaseLength(running) * rng.next();
  let demand = profile.runLoad;
  let load = running ? profile.runLoad : profile.idleLoad;

  const currentOf = (s: number): number => profile.ratedCurrent * (0.3 + 0.7 * (0.08 + 0.92 * s ** 3));
  // Start thermally settled at the cycle's mean heating, so runs do not open with a warm-up drift.
  const meanHeat =
    profile.dutyFraction * (currentOf(profile.runLoad) / profile.ratedCurrent) ** 2 +
    (1 - profile.dutyFraction) * (currentOf(profile.idleLoad) / profile.ratedCurrent) ** 2;
  const meanSpeed2 = profile.dutyFraction * profile.runLoad ** 2 + (1 - profile.dutyFraction) * profile.idleLoad ** 2;
  let winding = ambientAt(start) + profile.windingRise * meanHeat;
  let bearing = ambientAt(start) + profile.bearingRise * meanSpeed2 + 0.15 * (winding - ambientAt(start));
  let index = 0;

  return {
    get sampleIndex() {
      return index;
    },
    step() {
      const t = start + index * periodMs;
      index++;
      phaseLeft -= dt;
      while (phaseLeft <= 0) {
        running = !running;
        phaseLeft += phaseLength(running);
      }
      demand += (profile.runLoad - demand) * demandAlpha + demandNoise * rng.normal();
      const target = running ? Math.min(1.05, Math.max(profile.idleLoad, demand)) : profile.idleLoad;
      load += (target - load) * rampAlpha;
      const s = load;
      const ambient = ambientAt(t);
      const current = currentOf(s);
      winding += (ambient + profile.windingRise * (current / profile.ratedCurrent) ** 2 - winding) * windingAlpha;
      bearing += (ambient + profile.bearingRise * s * s + 0.15 * (winding - ambient) - bearing) * bearingAlpha;
      // Flow pulsation from the impeller passing the volute shows as a small ripple.
      const ripple = 0.01 * Math.sin((2 * Math.PI * t) / 1700);
      const out = new Float64Array(SENSOR_CHANNELS.length);
      out[CHANNEL_INDEX.current] = current * (1 + 0.008 * rng.normal());
      out[CHANNEL_INDEX.speed] = profile.ratedSpeed * s + 2 * rng.normal();
      out[CHANNEL_INDEX.vibration] = (profile.vibrationBase + profile.vibrationGain * s * s) * (1 + 0.06 * rng.normal());
      out[CHANNEL_INDEX.temperature] = winding + 0.08 * rng.normal();
      out[CHANNEL_INDEX.bearing_temp] = bearing + 0.08 * rng.normal();
      out[CHANNEL_INDEX.pressure] = profile.ratedPressure * (0.05 + 0.95 * s * s) * (1 + ripple + 0.005 * rng.normal());
      out[CHANNEL_INDEX.flow] = profile.ratedFlow * s * (1 + ripple + 0.01 * rng.normal());
      out[CHANNEL_INDEX.power] = profile.ratedPower * (0.08 + 0.92 * s ** 3) * (1 + 0.008 * rng.normal());
      return out;
    },
  };
}

/** Rounds a value to a channel's reported resolution (exactly, as JSON prints it). */
export function roundToChannel(channel: SensorChannel, value: number): number {
  const f = 10 ** CHANNEL_INFO[channel].decimals;
  const r = Math.round(value * f) / f;
  return Object.is(r, -0) ? 0 : r;
}
