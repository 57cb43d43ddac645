import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const href = (p: string) => JSON.stringify(pathToFileURL(join(root, p)).href);

/** Runs `code` as an ES module in a fresh Node; sends `signal` once it printed "ready"; its exit and output. */
function signalWhenReady(code: string, signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (d: Buffer) => {
      stdout += d.toString();
      if (!sent && stdout.includes('ready\n')) {
        sent = true;
        child.kill(signal);
      }
    });
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('exit', (c, s) => resolve({ code: c, signal: s, stdout, stderr }));
  });
}

test('a signal while the entry point loads ends the process with 0, saying so', async () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    // Still "loading": the handler is in, the service's own is not yet.
    const r = await signalWhenReady(`await import(${href('shared/src/lifecycle/early-signals.ts')}); process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`, signal);
    assert.equal(r.signal, null, `${signal}: not killed by the signal`);
    assert.equal(r.code, 0, `${signal}: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${signal} before the service started`));
  }
});

test('once the service has its own handlers, a signal goes to them and not to the early one', async () => {
  const code = `await import(${href('shared/src/lifecycle/early-signals.ts')});
const { handleShutdownSignals } = await import(${href('shared/src/lifecycle/signals.ts')});
handleShutdownSignals({ onStop: (s) => { process.stdout.write('graceful ' + s + '\\n'); setTimeout(() => process.exit(3), 10); }, onForce: () => process.exit(4) });
process.stdout.write('ready\\n'); setInterval(() => {}, 1000);`;
  const r = await signalWhenReady(code, 'SIGTERM');
  assert.equal(r.code, 3, r.stderr);
  assert.match(r.stdout, /graceful SIGTERM/);
  assert.doesNotMatch(r.stderr, /before the service started/);
});

test('a signal that arrives while modules evaluate reaches the service handlers installed after them', async () => {
  // The signal comes while the event loop is blocked (as by a module's evaluation), so it is
  // still pending when the handlers are swapped; it must not be dropped with the early one.
  const code = `await import(${href('shared/src/lifecycle/early-signals.ts')});
const { handleShutdownSignals } = await import(${href('shared/src/lifecycle/signals.ts')});
process.stdout.write('ready\\n');
const until = Date.now() + 1500; while (Date.now() < until) {}
handleShutdownSignals({ onStop: (s) => { process.stdout.write('graceful ' + s + '\\n'); setTimeout(() => process.exit(3), 10); }, onForce: () => process.exit(4) });
setTimeout(() => process.exit(5), 3000);`;
  const r = await signalWhenReady(code, 'SIGTERM');
  assert.equal(r.code, 3, `exit ${r.code}: ${r.code === 5 ? 'the signal was lost' : r.stderr}`);
  assert.match(r.stdout, /graceful SIGTERM/);
});

test('every long-running service entry point loads early-signals alone, the rest dynamically after it', () => {
  for (const kind of ['vision-worker', 'sensor-worker', 'actions-worker', 'console', 'gateway-sim']) {
    const text = readFileSync(join(root, 'services', kind, 'src', 'main.ts'), 'utf8');
    // Static imports load before any module evaluates: only the handler (and types, erased) may be one.
    const statics = [...text.matchAll(/^import\s(?!type\s).*$/gm)].map((m) => m[0]);
    assert.deepEqual(statics, ["import '../../../shared/src/lifecycle/early-signals.js';"], kind);
    assert.match(text, /await Promise\.all\(\[\s*import\(/, kind);
  }
});
