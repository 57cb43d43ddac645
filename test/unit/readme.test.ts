import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';

const read = (path: string) => readFileSync(new URL(`../../${path}`, import.meta.url), 'utf8');

test('CI runs the test command the README gives a newcomer', () => {
  assert.ok(read('README.md').includes('npm ci && npm test'), 'README states the test command');
  assert.match(read('.ci/run'), /^npm test \|\| status=\$\?$/m, '.ci/run runs npm test');
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  assert.ok(pkg.scripts.test?.includes('test/run.ts'), 'npm test runs the harness');
});

test('every npm script the README names exists', () => {
  const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
  const named = [...read('README.md').matchAll(/npm run ([a-z:-]+)/g)].map((m) => m[1]!);
  assert.ok(named.length > 5);
  for (const script of new Set(named)) assert.ok(pkg.scripts[script], `package.json has script ${script}`);
});

test('every environment variable a worker reads is in the README configuration tables', () => {
  const readme = read('README.md');
  for (const service of ['vision-worker', 'sensor-worker', 'actions-worker']) {
    // Each worker's own reader, and the security settings every worker reads through it.
    const source = read(`services/${service}/src/config.ts`) + read('shared/src/config/security.ts');
    const names = [...source.matchAll(/\b(?:string|optionalString|int|number|oneOf|brokers|url|optionalInt)\(\s*'([A-Z][A-Z0-9_]+)'/g)].map((m) => m[1]!);
    assert.ok(names.length > 10, `${service}: found its variables`);
    const missing = [...new Set(names)].filter((n) => !readme.includes(`\`${n}\``));
    assert.deepEqual(missing, [], `${service}: variables missing from README`);
  }
});
