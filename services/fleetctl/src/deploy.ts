/**
 * `models deploy`: validate a version folder, evaluate it on held-back data with the trainer's
 * code, compare to the manifest's gate, and record the deployment (what `promote` and `shadow`
 * require). Nothing is served by a deploy: it only admits a version.
 */
import { recordDeployment, type Deployment } from '../../../shared/src/models/releases.js';
import type { FleetContext } from './context.js';
import { RefusalError } from './errors.js';
import { evaluateVersion, type Evaluation } from './evaluation.js';
import { checkGate, describeGate, type GateResult } from './gate.js';
import { validateVersionDir, type ValidationResult } from './validate.js';

export interface DeployOptions {
  dir: string;
  /** Held-back data instead of the gate's own `data` (a smaller set for a quick check). */
  data?: string;
  /** Record the deployment even below the gate (the evaluation still runs and is recorded as forced). */
  forceGate?: boolean;
  /** Deploy a model whose manifest has no gate (evaluated only when `data` is given). */
  noGate?: boolean;
}

export interface DeployResult {
  model: string;
  version: string;
  dir: string;
  engine: string;
  files: string[];
  validationSeconds: number;
  evaluation?: Omit<Evaluation, 'figures'> & { summary: Record<string, unknown> };
  gate?: GateResult & { line: string; forced: boolean };
  deployment: Deployment;
}

/** The evaluation's scalar figures (no matrices or per-class tables): what is recorded and printed. */
export function summarise(figures: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(figures).filter(([, v]) => typeof v === 'number' || typeof v === 'boolean' || typeof v === 'string'));
}

export async function deployVersion(ctx: FleetContext, o: DeployOptions): Promise<DeployResult> {
  ctx.progress(`validating ${o.dir}`);
  const v: ValidationResult = await validateVersionDir(o.dir, ctx.config.registry);
  const { manifest } = v;
  ctx.progress(`${manifest.name}@${manifest.version}: files ${v.files.join(', ')}; loads on ${v.engine}, output ${v.outputSize} values per item (${v.seconds.toFixed(1)} s)`);
  const gate = manifest.gate;
  if (!gate && !o.noGate) {
    throw new RefusalError(`${manifest.name}@${manifest.version} has no gate in its manifest (gate: {metric, min, data}); deploy it without one with --no-gate`, { check: 'gate' });
  }
  let evaluation: Evaluation | undefined;
  let gateResult: DeployResult['gate'];
  const data = o.data ?? gate?.data;
  if (data !== undefined && (gate || o.data !== undefined)) {
    ctx.progress(`evaluating on ${data}`);
    evaluation = await evaluateVersion(v.dir, manifest, data);
    if (gate && !o.noGate) {
      const r = checkGate(evaluation.figures, gate);
      gateResult = { ...r, line: describeGate(r), forced: !r.passed && o.forceGate === true };
      ctx.progress(`gate: ${gateResult.line} (${evaluation.seconds} s)`);
      if (!r.passed && !o.forceGate) {
        throw new RefusalError(`${manifest.name}@${manifest.version} refused: ${gateResult.line} on ${data}`, { check: 'gate', gate: gateResult, figures: summarise(evaluation.figures) });
      }
    }
  }
  const deployment: Deployment = {
    model: manifest.name,
    version: manifest.version,
    dir: v.dir,
    at: Date.now(),
    by: ctx.config.by,
    evaluation: evaluation
      ? {
          metric: gateResult?.metric ?? null,
          value: gateResult?.value ?? null,
          gate: gateResult?.min ?? null,
          data: evaluation.data,
          seconds: evaluation.seconds,
          ...(gateResult?.forced ? { forced: true } : {}),
          ...(o.noGate ? { noGate: true } : {}),
        }
      : { gate: null, noGate: true },
  };
  await recordDeployment(ctx.redis, deployment);
  const { figures, ...evalRest } = evaluation ?? { figures: undefined };
  return {
    model: manifest.name,
    version: manifest.version,
    dir: v.dir,
    engine: v.engine,
    files: v.files,
    validationSeconds: Math.round(v.seconds * 10) / 10,
    ...(evaluation && figures ? { evaluation: { ...(evalRest as Omit<Evaluation, 'figures'>), summary: summarise(figures) } } : {}),
    ...(gateResult ? { gate: gateResult } : {}),
    deployment,
  };
}
