/** Human-readable lines for each command's result (`--json` prints the objects themselves). */
import type { DeployResult } from './deploy.js';
import type { JobOutcome } from './model-jobs.js';
import type { QueueStatus } from './queue-status.js';
import type { RecalibrateResult } from './recalibrate.js';
import type { SwitchResult } from './rollout.js';
import type { ShadowRunReport } from './shadow-run.js';
import type { ModelStatus } from './status.js';

const pct = (v: number | undefined) => (v === undefined ? 'n/a' : `${(v * 100).toFixed(2)}%`);
const num = (v: number | undefined) => (v === undefined ? 'n/a' : String(Number(v.toPrecision(4))));

function deployLines(r: DeployResult): string[] {
  const lines = [`deployed ${r.model}@${r.version} (${r.dir}): files ${r.files.join(', ')}; loads on ${r.engine} (${r.validationSeconds} s)`];
  if (r.gate) lines.push(`gate: ${r.gate.line}${r.gate.forced ? ' (forced)' : ''} on ${r.evaluation?.data ?? '?'} (${r.evaluation?.seconds ?? '?'} s)`);
  else lines.push(r.evaluation ? `no gate: evaluated on ${r.evaluation.data} (${r.evaluation.seconds} s)` : 'no gate: not evaluated (--no-gate)');
  return lines;
}

function switchLines(r: SwitchResult): string[] {
  const lines = [`${r.model}: live ${r.release.live} (seq ${r.release.seq}), previous [${r.release.previous.join(', ')}]${r.release.shadow ? `, shadow ${r.release.shadow}` : ''}`];
  if (r.note) lines.push(r.note);
  else lines.push(`${r.switched.length} of ${r.workers.length} workers switched in ${(r.waitedMs / 1000).toFixed(1)} s: ${r.switched.join(', ')}`);
  return lines;
}

function shadowLines(r: ShadowRunReport): string[] {
  const s = r.report;
  const rates =
    s.labelAgreement !== undefined
      ? `label agreement ${pct(s.labelAgreement)}, verdict agreement ${pct(s.verdictAgreement)}, tile agreement ${pct(s.tileAgreement)}, defects live ${s.live} / shadow ${s.shadow}`
      : `score correlation ${num(s.scoreCorrelation)}, alert agreement ${pct(s.alertAgreement)}, anomalous live ${s.live} / shadow ${s.shadow}`;
  return [`shadow ${r.model}@${r.candidate} beside ${r.live}: ${s.compared} compared over ${(r.durationMs / 1000).toFixed(0)} s on ${r.workers.length} workers`, rates, `report: ${r.file}`];
}

function recalibrateLines(r: RecalibrateResult): string[] {
  return [
    `${r.model}: threshold ${r.oldThreshold} (${r.fromVersion}) -> ${r.newThreshold} (${r.version}) from ${r.count} normal scores (left out: ${r.excluded.anomalous} anomalous, ${r.excluded.afterGap} after a gap, ${r.excluded.inAlert} in an alert)`,
    ...deployLines(r.deploy),
  ];
}

export function jobLines(o: JobOutcome): string[] {
  if (!o.ok) {
    const lines = [`refused: ${o.error ?? 'failed'}`, `(job ${o.jobId})`];
    const gate = o.details?.gate as { line?: string } | undefined;
    if (gate?.line) lines.splice(1, 0, `gate: ${gate.line}`);
    return lines;
  }
  const r = o.result;
  const body =
    o.command === 'deploy'
      ? deployLines(r as DeployResult)
      : o.command === 'shadow'
        ? shadowLines(r as ShadowRunReport)
        : o.command === 'recalibrate'
          ? recalibrateLines(r as RecalibrateResult)
          : switchLines(r as SwitchResult);
  return [...body, `(job ${o.jobId})`];
}

export function modelsStatusLines(models: readonly ModelStatus[]): string[] {
  const lines: string[] = [];
  for (const m of models) {
    const rel = m.release ? `live ${m.release.live}${m.release.shadow ? `, shadow ${m.release.shadow}` : ''}, previous [${m.release.previous.join(', ')}], seq ${m.release.seq}, by ${m.release.by} at ${new Date(m.release.at).toISOString()}` : 'no release';
    lines.push(`${m.model}: ${rel}`);
    lines.push(`  registry: ${m.registry.join(', ') || '-'}; deployed: ${m.deployed.map((d) => d.version).join(', ') || '-'}`);
    for (const w of m.workers) {
      lines.push(`  worker ${w.workerId} (${w.kind}): live ${w.live}${w.shadow ? `, shadow ${w.shadow}` : ''}, ${w.engine}, seq ${w.seq}${w.refused ? `, refused: ${w.refused}` : ''}`);
    }
    if (m.workers.length === 0) lines.push('  no live worker serves it');
  }
  return lines.length ? lines : ['no models'];
}

export function jobsStatusLines(queues: readonly QueueStatus[]): string[] {
  if (queues.length === 0) return ['no BullMQ queues found'];
  const lines: string[] = [];
  for (const q of queues) {
    const c = q.counts;
    lines.push(`${q.prefix}:${q.queue}: waiting ${c.waiting ?? 0}, active ${c.active ?? 0}, delayed ${c.delayed ?? 0}, failed ${c.failed ?? 0}, completed ${c.completed ?? 0}; ${q.workers} workers`);
    for (const f of q.failed) lines.push(`  failed ${f.id} (${f.name}) after ${f.attemptsMade} attempts: ${f.failedReason}`);
    for (const s of q.stuck) lines.push(`  stuck ${s.id} (${s.name}): ${s.reason}`);
  }
  return lines;
}
