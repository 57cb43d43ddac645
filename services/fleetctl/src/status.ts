/** `models status`: releases, deployed versions, versions in the registry, and every live worker's report. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { listDeployments, listReleases, listWorkerModels, type Release } from '../../../shared/src/models/releases.js';
import type { FleetContext } from './context.js';
import { compareVersions } from './versions.js';
import { workersServing, type WorkerState } from './rollout.js';

export interface ModelStatus {
  model: string;
  release?: Release;
  deployed: { version: string; at: string; by: string; evaluation: Record<string, unknown> }[];
  registry: string[];
  workers: WorkerState[];
}

async function dirs(path: string): Promise<string[]> {
  try {
    return (await readdir(path, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch {
    return [];
  }
}

export async function modelsStatus(ctx: FleetContext, only?: string): Promise<ModelStatus[]> {
  const releases = await listReleases(ctx.redis);
  const reports = await listWorkerModels(ctx.redis);
  const names = new Set<string>(only !== undefined ? [only] : [...(await dirs(ctx.config.registry)), ...releases.map((r) => r.model), ...reports.flatMap((r) => Object.keys(r.models))]);
  const out: ModelStatus[] = [];
  for (const model of [...names].sort()) {
    const release = releases.find((r) => r.model === model);
    const deployed = (await listDeployments(ctx.redis, model))
      .sort((a, b) => compareVersions(a.version, b.version))
      .map((d) => ({ version: d.version, at: new Date(d.at).toISOString(), by: d.by, evaluation: d.evaluation }));
    const workers = workersServing(reports, model);
    out.push({ model, ...(release ? { release } : {}), deployed, registry: (await dirs(join(ctx.config.registry, model))).sort(compareVersions), workers });
  }
  return out;
}
