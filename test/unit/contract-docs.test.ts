import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { test } from 'node:test';
import { decodeAlertEvent, decodeAnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { REJECT_REASONS, type Decoded } from '../../shared/src/contracts/errors.js';
import { FRAME_HEADERS } from '../../shared/src/contracts/frame.js';
import { decodeDefectEvent, decodeInspection } from '../../shared/src/contracts/inspection.js';
import { contractJsonSchemas } from '../../shared/src/contracts/json-schemas.js';
import type { InboundRecord } from '../../shared/src/contracts/record.js';
import { decodeSensorMessage } from '../../shared/src/contracts/sensor.js';
import { DEFAULT_TOPICS } from '../../shared/src/contracts/topics.js';
import { DLQ_HEADERS } from '../../shared/src/contracts/dead-letter.js';

/**
 * docs/ must say what the code does: the JSON Schema files are the generated output of the
 * decoders' own schemas (`npm run docs:schemas` rewrites them), and every example in
 * docs/contracts.md decodes with the product's decoders.
 */
const root = new URL('../../', import.meta.url);
const contractsMd = readFileSync(new URL('docs/contracts.md', root), 'utf8');

test('docs/schemas/*.schema.json are what the contracts generate', () => {
  for (const [name, schema] of Object.entries(contractJsonSchemas())) {
    const file = new URL(`docs/schemas/${name}.schema.json`, root);
    const text = `${JSON.stringify(schema, null, 2)}\n`;
    if (process.env.UPDATE_SCHEMAS === '1') writeFileSync(file, text);
    assert.equal(readFileSync(file, 'utf8'), text, `${name}.schema.json is stale: run npm run docs:schemas`);
    assert.ok(contractsMd.includes(`schemas/${name}.schema.json`), `docs/contracts.md links ${name}.schema.json`);
  }
});

test('docs/contracts.md names every topic, frame header, reason code and dead-letter header', () => {
  for (const t of DEFAULT_TOPICS) assert.ok(contractsMd.includes(`\`${t.name}\``), t.name);
  for (const h of Object.values(FRAME_HEADERS)) assert.ok(contractsMd.includes(`\`${h}\``), h);
  for (const r of Object.keys(REJECT_REASONS)) assert.ok(contractsMd.includes(`| \`${r}\` |`), `reason ${r}`);
  for (const h of Object.values(DLQ_HEADERS)) assert.ok(contractsMd.includes(`\`${h}\``), h);
});

test('every JSON example in docs/contracts.md decodes with the product decoders', () => {
  const decoders: Record<string, (r: InboundRecord) => Decoded<unknown>> = {
    'sensor-reading': (r) => decodeSensorMessage(r),
    'sensor-chunk': (r) => decodeSensorMessage(r),
    inspection: decodeInspection,
    'defect-event': decodeDefectEvent,
    'anomaly-score': decodeAnomalyScore,
    'alert-event': decodeAlertEvent,
  };
  const examples = [...contractsMd.matchAll(/<!-- example: ([a-z-]+) -->\s*```json\n([\s\S]*?)```/g)];
  const kinds = new Set(examples.map((m) => m[1]));
  assert.deepEqual([...kinds].sort(), Object.keys(decoders).sort(), 'one example or more per JSON contract');
  for (const [, kind, body] of examples) {
    const r = decoders[kind!]!({ value: Buffer.from(body!) });
    assert.ok(r.ok, `${kind} example: ${r.ok ? '' : r.error.message}`);
  }
});
