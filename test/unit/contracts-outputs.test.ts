import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  anomalyScoreSchema,
  decodeAlertEvent,
  decodeAnomalyScore,
  encodeAlertEvent,
  encodeAnomalyScore,
  isStringifiableAnomalyScore,
  isValidAnomalyScore,
  type AnomalyScore,
} from '../../shared/src/contracts/anomaly.js';
import { decodeDeadLetter, encodeDeadLetter, DLQ_HEADERS } from '../../shared/src/contracts/dead-letter.js';
import { ContractViolation } from '../../shared/src/contracts/errors.js';
import { decodeDefectEvent, decodeInspection, encodeDefectEvent, encodeInspection } from '../../shared/src/contracts/inspection.js';
import { EVENT_ID_HEADER } from '../../shared/src/contracts/record.js';
import { alertEvent, anomalyScore, inspection } from '../helpers/fixtures.js';

describe('output contracts', () => {
  test('inspection: key = camera id, event-id = frame id, round-trips', () => {
    const rec = encodeInspection(inspection);
    assert.equal(rec.key, inspection.cameraId);
    assert.equal(rec.headers[EVENT_ID_HEADER], inspection.frameId);
    assert.deepEqual(decodeInspection(rec), { ok: true, value: inspection });
  });

  test('defect event: key = line id, verdict must be defect', () => {
    const rec = encodeDefectEvent({ ...inspection, verdict: 'defect' });
    assert.equal(rec.key, inspection.lineId);
    assert.ok(decodeDefectEvent(rec).ok);
    const okFrame = encodeInspection({ ...inspection, verdict: 'ok' });
    const r = decodeDefectEvent(okFrame);
    assert.ok(!r.ok && r.error.field === 'verdict');
  });

  test('anomaly score and alert event round-trip with their keys and event ids', () => {
    const s = encodeAnomalyScore(anomalyScore);
    assert.equal(s.key, 'pump-7');
    assert.equal(s.headers[EVENT_ID_HEADER], anomalyScore.windowId);
    assert.deepEqual(decodeAnomalyScore(s), { ok: true, value: anomalyScore });
    const a = encodeAlertEvent(alertEvent);
    assert.equal(a.headers[EVENT_ID_HEADER], `${alertEvent.alertId}:raised`);
    assert.deepEqual(decodeAlertEvent(a), { ok: true, value: alertEvent });
  });

  test('encoders refuse invalid outputs, naming the field', () => {
    assert.throws(() => encodeInspection({ ...inspection, confidence: 1.5 }), (e: ContractViolation) => e.field === 'confidence');
    assert.throws(() => encodeAnomalyScore({ ...anomalyScore, score: Number.NaN }), (e: ContractViolation) => e.field === 'score');
    assert.throws(
      () => encodeAlertEvent({ ...alertEvent, state: 'open' as 'raised' }),
      (e: ContractViolation) => e.field === 'state',
    );
    assert.throws(
      () => encodeInspection({ ...inspection, model: { ...inspection.model, version: '' } }),
      (e: ContractViolation) => e.field === 'model.version',
    );
  });

  test('decoders reject outputs with missing fields, naming them', () => {
    const { processing: _p, ...noProcessing } = anomalyScore;
    const r = decodeAnomalyScore({ value: Buffer.from(JSON.stringify(noProcessing)) });
    assert.ok(!r.ok && r.error.field === 'processing' && r.error.reason === 'schema');
  });
});

describe('dead-letter contract', () => {
  const original = {
    key: Buffer.from('line-1/cam-1'),
    value: Buffer.from([0x00, 0xff, 0x10, 0x80]),
    headers: { 'frame-id': Buffer.from('f-9'), 'x-binary': Buffer.from([0xc3, 0x28]) },
  };
  const error = new ContractViolation('unsupported-content-type', 'header:content-type', 'one of image/x-gray8, image/png, image/jpeg', 'got "image/bmp"');
  const source = { topic: 'factory.camera.frames.v1', partition: 4, offset: '12345678901234' };

  test('keeps key, value and original headers byte for byte and adds the error headers', () => {
    const dl = encodeDeadLetter({ record: original, source, error, worker: 'vision-1', at: 1_764_000_000_000 });
    assert.deepEqual(dl.key, original.key);
    assert.deepEqual(dl.value, original.value);
    assert.deepEqual(dl.headers['x-binary'], original.headers['x-binary']);
    assert.equal(dl.headers[DLQ_HEADERS.reason], 'unsupported-content-type');
    const r = decodeDeadLetter(dl);
    assert.ok(r.ok, r.ok ? '' : r.error.message);
    assert.equal(r.value.reason, 'unsupported-content-type');
    assert.equal(r.value.field, 'header:content-type');
    assert.equal(r.value.message, error.message);
    assert.deepEqual(r.value.source, source);
    assert.equal(r.value.worker, 'vision-1');
    assert.deepEqual(Object.keys(r.value.originalHeaders).sort(), ['frame-id', 'x-binary']);
  });

  test('dead-lettering a replayed dead letter replaces the old error headers', () => {
    const first = encodeDeadLetter({ record: original, source, error, worker: 'vision-1', at: 1 });
    const again = encodeDeadLetter({
      record: { key: first.key, value: first.value, headers: first.headers },
      source: { ...source, offset: '7' },
      error: new ContractViolation('too-large', 'value', 'at most 1 bytes'),
      worker: 'vision-2',
      at: 2,
    });
    const r = decodeDeadLetter(again);
    assert.ok(r.ok && r.value.reason === 'too-large' && r.value.source.offset === '7' && r.value.worker === 'vision-2');
  });

  test('valueless (null) headers are left out, so the dead letter can always be written', () => {
    const withNull = { ...original, headers: { ...original.headers, 'x-empty': null } } as unknown as typeof original;
    const dl = encodeDeadLetter({ record: withNull, source, error, worker: 'vision-1', at: 1 });
    assert.equal('x-empty' in dl.headers, false);
    assert.ok(decodeDeadLetter(dl).ok);
  });

  test('a record without the error headers is not a dead letter', () => {
    const r = decodeDeadLetter(original);
    assert.ok(!r.ok && r.error.reason === 'missing-header' && r.error.field === `header:${DLQ_HEADERS.reason}`);
  });
});

describe('anomaly score encoding', () => {
  test('the hand-written anomaly score check passes only what the schema takes unchanged', () => {
    const bad: unknown[] = [undefined, null, NaN, Infinity, -Infinity, -1, -0.5, 1.5, 2 ** 53, 8_640_000_000_000_001, '', 'x'.repeat(129), ' pump', 'pump 7', '7', true, [], {}, [1], { a: 1 }];
    const fields: string[][] = [
      ['assetId'], ['windowId'], ['windowStart'], ['windowEnd'], ['score'], ['threshold'], ['anomalous'], ['afterGap'], ['contributions'],
      ['contributions', 'vibration'], ['contributions', '9lives'], ['contributions', 'a b'], ['contributions', 'x'.repeat(65)], ['contributions', 'fine_name'],
      ['model'], ['model', 'name'], ['model', 'version'], ['model', 'engine'], ['model', 'extra'],
      ['processing'], ['processing', 'worker'], ['processing', 'receivedAt'], ['processing', 'producedAt'], ['processing', 'extra'], ['extra'],
    ];
    const variants: unknown[] = [
      anomalyScore,
      { ...anomalyScore, contributions: {} },
      { ...anomalyScore, model: { ...anomalyScore.model, engine: 'e'.repeat(64) } },
      // Text that JSON escapes, numbers of every form String() writes.
      { ...anomalyScore, model: { ...anomalyScore.model, engine: 'on"nx\\rt\n\u0001é' }, processing: { ...anomalyScore.processing, worker: 'w "1"\t☃' } },
      { ...anomalyScore, score: 1e-7, threshold: 1.5e21, contributions: { a: 0, b: -0, c: 123456789.125, d: 5e-324 } },
    ];
    for (const path of fields) {
      for (const value of [...bad, 0, 5, 'fine', 'pump-8@1', false]) {
        const v = structuredClone(anomalyScore) as unknown as Record<string, Record<string, unknown>>;
        if (path.length === 1) v[path[0]!] = value as Record<string, unknown>;
        else v[path[0]!]![path[1]!] = value;
        variants.push(v);
      }
      // The field missing.
      const v = structuredClone(anomalyScore) as unknown as Record<string, Record<string, unknown>>;
      if (path.length === 1) delete v[path[0]!];
      else delete v[path[0]!]![path[1]!];
      variants.push(v);
    }
    variants.push(Object.assign(Object.create({ inherited: 1 }) as object, anomalyScore));
    let passed = 0;
    for (const v of variants) {
      if (!isValidAnomalyScore(v as AnomalyScore)) continue;
      passed += 1;
      const parsed = anomalyScoreSchema.safeParse(v);
      assert.ok(parsed.success, `passed by hand, refused by the schema: ${JSON.stringify(v)}`);
      // Unchanged: what the schema would write is what goes out.
      assert.deepEqual(JSON.parse(JSON.stringify(v)), JSON.parse(JSON.stringify(parsed.data)));
      // What goes out is JSON.stringify's text of the schema's parse, character for character.
      assert.equal(encodeAnomalyScore(v as AnomalyScore).value.toString(), JSON.stringify(parsed.data));
    }
    // The scores workers write do take the fast path; the check is not vacuous.
    assert.ok(isValidAnomalyScore(anomalyScore));
    assert.ok(passed >= 3 && passed < variants.length / 2, `${passed} of ${variants.length} passed`);
    // What the check refuses still goes through the schema: stripped, or refused with the field.
    const withExtra = { ...anomalyScore, extra: 1 } as AnomalyScore;
    assert.ok(!isValidAnomalyScore(withExtra));
    assert.deepEqual(JSON.parse(encodeAnomalyScore(withExtra).value.toString()), anomalyScore);
    assert.throws(() => encodeAnomalyScore({ ...anomalyScore, score: NaN }), (err: unknown) => err instanceof ContractViolation && err.field === 'score');
  });

  test("keys in the schema's order are written by JSON.stringify as they are; other orders as the schema orders them", () => {
    const expectSame = (v: AnomalyScore, stringified: boolean, what: string) => {
      assert.equal(isStringifiableAnomalyScore(v), stringified, what);
      assert.equal(encodeAnomalyScore(v).value.toString(), JSON.stringify(anomalyScoreSchema.parse(v)), what);
    };
    const score = (contributions: Record<string, number>, worker = 'sensor-1', extra: Partial<AnomalyScore> = {}): AnomalyScore =>
      ({ ...anomalyScore, contributions, processing: { ...anomalyScore.processing, worker }, ...extra });
    // Channels in any order (a record keeps its input order), workers that JSON escapes.
    for (const contributions of [{ b: 2, a: 1 }, { a: 1, b: 2 }, { b: 0 }, {}, { a: 1, ab: 2, abc: 3, b: 4 }, { a: 5e-324, b: 1e21, c: -0 }] as Record<string, number>[])
      expectSame(score(contributions), true, `contributions ${JSON.stringify(contributions)}`);
    for (const worker of ['sensor-2', 'w "3"\t☃', 'é']) expectSame(score({ a: 1 }, worker), true, `worker ${worker}`);
    for (const anomalous of [false, true]) for (const afterGap of [true, false]) expectSame(score({ a: 1 }, 'sensor-1', { anomalous, afterGap }), true, `anomalous ${anomalous}, afterGap ${afterGap}`);
    // Keys in another order, at each level: the schema's parse puts them in order.
    const { assetId, ...rest } = anomalyScore;
    expectSame({ ...rest, assetId }, false, 'assetId last');
    const { name, ...model } = anomalyScore.model;
    expectSame({ ...anomalyScore, model: { ...model, name } }, false, 'model.name last');
    const { worker, ...processing } = anomalyScore.processing;
    expectSame({ ...anomalyScore, processing: { ...processing, worker } }, false, 'processing.worker last');
  });

  test('keys the schema does not see: non-enumerable ones and symbols, as the schema treats them', () => {
    const hidden = (o: object, key: PropertyKey) => Object.defineProperty(o, key, { value: 1, enumerable: false });
    const sym = Symbol('s');
    // Passed over by the schema, and by the check and the writer.
    for (const v of [
      { ...anomalyScore, contributions: hidden({ vibration: 1 }, 'extra') },
      { ...anomalyScore, contributions: hidden({ vibration: 1 }, sym) },
      hidden({ ...anomalyScore }, 'extra'),
      { ...anomalyScore, [sym]: 1 },
      { ...anomalyScore, model: { ...anomalyScore.model, [sym]: 1 } },
      { ...anomalyScore, processing: { ...anomalyScore.processing, [sym]: 1 } },
    ] as AnomalyScore[]) {
      assert.ok(isValidAnomalyScore(v));
      assert.equal(encodeAnomalyScore(v).value.toString(), JSON.stringify(anomalyScoreSchema.parse(v)));
    }
    // An enumerable symbol key among the contributions is not a channel: the schema refuses it, so
    // the check must too (JSON.stringify would silently drop it).
    const withSymbol = { ...anomalyScore, contributions: { vibration: 1, [sym]: 2 } } as AnomalyScore;
    assert.ok(!anomalyScoreSchema.safeParse(withSymbol).success);
    assert.ok(!isValidAnomalyScore(withSymbol));
    assert.throws(() => encodeAnomalyScore(withSymbol), (err: unknown) => err instanceof ContractViolation && err.field.startsWith('contributions'));
  });
});
