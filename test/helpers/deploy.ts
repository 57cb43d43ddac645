import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT } from '../../deploy/local/stack.js';

/** A parsed YAML mapping (compose file, Kubernetes manifest). */
export type Rec = Record<string, unknown>;

export const isRecord = (v: unknown): v is Rec => typeof v === 'object' && v !== null && !Array.isArray(v);

/** `v` as a mapping, or a failed assertion naming `what`. */
export function rec(v: unknown, what: string): Rec {
  assert.ok(isRecord(v), `${what} is a mapping`);
  return v;
}

const envNames = new Map<string, Set<string>>();

/**
 * Every variable name a worker reads: its services/<service>/src/config.ts (`r.int('NAME', ...)`,
 * `topic('NAME', ...)`) and the shared security settings it reads through it.
 */
export function workerEnvNames(service: string): Set<string> {
  let names = envNames.get(service);
  if (!names) {
    const source = [`services/${service}/src/config.ts`, 'shared/src/config/security.ts'].map((f) => readFileSync(join(REPO_ROOT, f), 'utf8')).join('\n');
    names = new Set([...source.matchAll(/\(\s*'([A-Z][A-Z0-9_]*)'/g)].map((m) => m[1] ?? ''));
    assert.ok(names.size > 10 && names.has('KAFKA_BROKERS') && names.has('SHUTDOWN_TIMEOUT_MS'), `${service}: found the variables its config.ts reads`);
    envNames.set(service, names);
  }
  return names;
}
