/**
 * The deploy gate: one figure of the trainer's evaluation against the manifest's `gate.min`.
 *
 * `metric` is a dot path into the figures `npm run evaluate` prints (`accuracy`,
 * `windowsWithAlert`, `faults.d01.flaggedAfterOnset`), or a figure derived here from them:
 * - `f1`: harmonic mean of `recall` and `precision` (event-level, sim-asset-lstm-ae);
 * - `minFlaggedAfterOnset`: the smallest `faults.<f>.flaggedAfterOnset` over the faults the
 *   evaluation names as its targets (`target.faults`), else over every fault (tep-lstm-ae);
 * - `alertRecall`: `windowsWithAlert / labelledWindows` (nab-machine-temp).
 * A boolean figure counts as 1 (true) or 0.
 */
export interface Gate {
  metric: string;
  min: number;
  data: string;
}

export interface GateResult {
  metric: string;
  /** Undefined when the evaluation has no such figure (the gate fails). */
  value: number | undefined;
  min: number;
  passed: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

function atPath(figures: Record<string, unknown>, path: string): unknown {
  let at: unknown = figures;
  for (const part of path.split('.')) {
    if (!isRecord(at)) return undefined;
    at = at[part];
  }
  return at;
}

function asNumber(v: unknown): number | undefined {
  if (typeof v === 'boolean') return v ? 1 : 0;
  return typeof v === 'number' && Number.isFinite(v) ? v : undefined;
}

const DERIVED: Record<string, (f: Record<string, unknown>) => number | undefined> = {
  f1(f) {
    const r = asNumber(f.recall);
    const p = asNumber(f.precision);
    if (r === undefined || p === undefined) return undefined;
    return r + p > 0 ? (2 * r * p) / (r + p) : 0;
  },
  minFlaggedAfterOnset(f) {
    if (!isRecord(f.faults)) return undefined;
    const faults = f.faults;
    const target = isRecord(f.target) && Array.isArray(f.target.faults) ? f.target.faults.map(String) : Object.keys(faults);
    const values = target.map((k) => asNumber(isRecord(faults[k]) ? faults[k].flaggedAfterOnset : undefined));
    if (values.length === 0 || values.some((v) => v === undefined)) return undefined;
    return Math.min(...(values as number[]));
  },
  alertRecall(f) {
    const hit = asNumber(f.windowsWithAlert);
    const all = asNumber(f.labelledWindows);
    return hit !== undefined && all !== undefined && all > 0 ? hit / all : undefined;
  },
};

/** The gate's figure from an evaluation: a path into it first, then a derived figure. */
export function gateValue(figures: Record<string, unknown>, metric: string): number | undefined {
  const direct = asNumber(atPath(figures, metric));
  if (direct !== undefined) return direct;
  return DERIVED[metric]?.(figures);
}

export function checkGate(figures: Record<string, unknown>, gate: Pick<Gate, 'metric' | 'min'>): GateResult {
  const value = gateValue(figures, gate.metric);
  return { metric: gate.metric, value, min: gate.min, passed: value !== undefined && value >= gate.min };
}

/** One line: "accuracy 0.9846 >= 0.975: passed". */
export function describeGate(r: GateResult): string {
  if (r.value === undefined) return `${r.metric}: not in the evaluation's figures: refused`;
  const v = Number(r.value.toPrecision(6));
  return `${r.metric} ${v} ${r.passed ? '>=' : '<'} ${r.min}: ${r.passed ? 'passed' : 'below the gate'}`;
}
