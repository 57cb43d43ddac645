import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { actionFailedJsonSchema, decodeActionFailed, encodeActionFailed } from '../../shared/src/contracts/action.js';
import { createTopicCatalog } from '../../shared/src/contracts/topics.js';

const ACTIONS_FAILED_TOPIC = createTopicCatalog().actionsFailed;

const root = new URL('../../', import.meta.url);
const contractsMd = readFileSync(new URL('docs/contracts.md', root), 'utf8');

test('docs/schemas/action-failed.schema.json is what the contract generates, and contracts.md links it', () => {
  const file = new URL('docs/schemas/action-failed.schema.json', root);
  const text = `${JSON.stringify(actionFailedJsonSchema(), null, 2)}\n`;
  if (process.env.UPDATE_SCHEMAS === '1') writeFileSync(file, text);
  assert.equal(readFileSync(file, 'utf8'), text, 'action-failed.schema.json is stale: run UPDATE_SCHEMAS=1 on this test');
  assert.ok(contractsMd.includes('schemas/action-failed.schema.json'));
  assert.ok(contractsMd.includes(`\`${ACTIONS_FAILED_TOPIC.name}\``));
});

test('the action-failed example in docs/contracts.md decodes and re-encodes keyed by event id', () => {
  const m = /<!-- actions-example: action-failed -->\s*```json\n([\s\S]*?)```/.exec(contractsMd);
  assert.ok(m, 'contracts.md has the example');
  const d = decodeActionFailed({ value: Buffer.from(m[1]!) });
  assert.ok(d.ok, d.ok ? '' : d.error.message);
  const r = encodeActionFailed(d.value);
  assert.equal(r.key, 'pump-7@1764000000000:raised');
  assert.equal(r.headers['event-id'], r.key);
  const bad = decodeActionFailed({ value: Buffer.from(JSON.stringify({ ...d.value, reason: 'gone' })) });
  assert.ok(!bad.ok && bad.error.field === 'reason');
});
