import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { ConfigError, loadConfig, routeSecrets } from '../../services/actions-worker/src/config.js';

const route = { name: 'mes', url: 'https://mes.example/api/events', events: ['defect'] };
const problems = (env: Record<string, string>): string[] => {
  try {
    loadConfig(env, '/repo');
  } catch (err) {
    assert.ok(err instanceof ConfigError);
    return err.problems;
  }
  assert.fail('expected a ConfigError');
};

test('defaults: route fields, catalog topics, group and queue prefix', () => {
  const c = loadConfig({ ACTIONS_ROUTES: JSON.stringify([route]) }, '/repo');
  assert.deepEqual(c.routes, [{ ...route, timeoutMs: 5000, ratePerSec: 20, attempts: 8, backoffMs: 500, concurrency: 4 }]);
  assert.deepEqual(c.topics, { defects: 'quality.defects.v1', alerts: 'maintenance.alerts.v1', failed: 'actions.failed.v1' });
  assert.equal(c.groupId, 'actions-worker');
  assert.equal(c.queuePrefix, 'actions');
  assert.equal(c.metricsPort, 9464);
  assert.equal(c.shutdownTimeoutMs, 30_000);
  assert.deepEqual(c.security, {});
});

test('ACTIONS_ROUTES_FILE reads the routes from a file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'actions-config-'));
  const file = join(dir, 'routes.json');
  writeFileSync(file, JSON.stringify([{ ...route, events: ['alert', 'defect', 'alert'], authHeader: 'Bearer abcdefgh12345678', attempts: 3 }]));
  const c = loadConfig({ ACTIONS_ROUTES_FILE: file, ACTIONS_FAILED_TOPIC: 'plant2.actions.failed.v1' }, '/repo');
  assert.deepEqual(c.routes[0]!.events, ['alert', 'defect'], 'duplicates dropped');
  assert.equal(c.routes[0]!.attempts, 3);
  assert.equal(c.topics.failed, 'plant2.actions.failed.v1');
  assert.deepEqual(routeSecrets(c.routes), ['Bearer abcdefgh12345678', 'abcdefgh12345678']);
});

test('every bad value is one plain line; an auth header is never echoed', () => {
  const secret = 'Bearer do-not-print-me';
  const p = problems({
    ACTIONS_ROUTES: JSON.stringify([
      { ...route, url: 'ftp://x', authHeader: secret, timeoutMs: 0 },
      { ...route, events: ['email'], extra: 1 },
      { name: 'bad name', url: 'http://x', events: [] },
    ]),
    METRICS_PORT: '70000',
  });
  assert.deepEqual(p, [
    'ACTIONS_ROUTES: [0].url: must be an http or https URL',
    'ACTIONS_ROUTES: [0].timeoutMs: Too small: expected number to be >=100',
    'ACTIONS_ROUTES: [1].events[0]: must be "defect" or "alert"',
    'ACTIONS_ROUTES: [1]: Unrecognized key: "extra"',
    'ACTIONS_ROUTES: [2].name: must be 1-64 characters of [A-Za-z0-9_-]',
    'ACTIONS_ROUTES: [2].events: must name at least one event type',
    'METRICS_PORT: must be an integer from 0 to 65535, got "70000"',
  ]);
  assert.ok(!p.join('\n').includes('do-not-print-me'));
});

test('routes are required, once; names unique; JSON must parse; topics must differ', () => {
  assert.deepEqual(problems({}), ['ACTIONS_ROUTES_FILE or ACTIONS_ROUTES: required (a JSON list of routes)']);
  assert.deepEqual(problems({ ACTIONS_ROUTES: '[]', ACTIONS_ROUTES_FILE: '/x' }), ['ACTIONS_ROUTES_FILE / ACTIONS_ROUTES: set one of them, not both']);
  assert.deepEqual(problems({ ACTIONS_ROUTES: '[]' }), ['ACTIONS_ROUTES: must list at least one route']);
  assert.match(problems({ ACTIONS_ROUTES: '[{' })[0]!, /^ACTIONS_ROUTES: not JSON/);
  assert.deepEqual(problems({ ACTIONS_ROUTES_FILE: '/nonexistent/routes.json' }), ['ACTIONS_ROUTES_FILE: cannot read "/nonexistent/routes.json" (ENOENT)']);
  assert.deepEqual(problems({ ACTIONS_ROUTES: JSON.stringify([route, route]) }), ['ACTIONS_ROUTES: [1].name: "mes" is used by two routes']);
  assert.deepEqual(problems({ ACTIONS_ROUTES: JSON.stringify([route]), DEFECTS_TOPIC: 't', ALERTS_TOPIC: 't' }), ['DEFECTS_TOPIC and ALERTS_TOPIC: must differ (both "t")']);
});
