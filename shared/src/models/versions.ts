/** Model version names, and the newest version of a model in a registry folder. */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Version names: `<major>.<minor>.<patch>` with an optional `-pre`/`+build` tail (what the
 * manifest schema's version pattern admits is wider; only this is ordered numerically).
 */
export const SEMVER = /^(\d+)\.(\d+)\.(\d+)(?:[-+].*)?$/;

/** Orders versions numerically where both are semver-like, else as strings. */
export function compareVersions(a: string, b: string): number {
  const ma = SEMVER.exec(a);
  const mb = SEMVER.exec(b);
  if (ma && mb) {
    for (let i = 1; i <= 3; i++) {
      const d = Number(ma[i]) - Number(mb[i]);
      if (d !== 0) return d;
    }
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Versions of `name` in `registry` (folders holding a manifest), oldest first. */
export async function registryVersions(registry: string, name: string): Promise<string[]> {
  const dir = join(registry, name);
  if (!existsSync(dir)) return [];
  const entries = await readdir(dir, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory() && existsSync(join(dir, e.name, 'manifest.json')))
    .map((e) => e.name)
    .sort(compareVersions);
}
