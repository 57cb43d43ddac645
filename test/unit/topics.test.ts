import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createTopicCatalog, deadLetterTopicOf, DEFAULT_TOPICS } from '../../shared/src/contracts/topics.js';

test('the catalog holds every v1 topic of the contract, inputs with their dead-letter topics', () => {
  const c = createTopicCatalog();
  assert.deepEqual(
    Object.values(c).map((t) => t.name).sort(),
    [
      'actions.failed.v1',
      'factory.camera.frames.v1',
      'factory.camera.frames.v1.dlq',
      'factory.sensor.readings.v1',
      'factory.sensor.readings.v1.dlq',
      'maintenance.alerts.v1',
      'maintenance.anomaly-scores.v1',
      'quality.defects.v1',
      'quality.inspections.v1',
    ],
  );
  assert.equal(c.framesDlq.name, deadLetterTopicOf(c.frames.name));
  assert.equal(c.readingsDlq.name, deadLetterTopicOf(c.readings.name));
  for (const t of DEFAULT_TOPICS) {
    assert.ok(t.partitions >= 1);
    assert.ok(Number(t.config['retention.ms']) > 0, `${t.name} has a retention`);
    assert.equal(t.config['cleanup.policy'], 'delete');
  }
});

test('names and partitions can be overridden; bad overrides fail with a plain message', () => {
  const c = createTopicCatalog({ names: { frames: 'plant2.frames.v1' }, partitions: { frames: 24 } });
  assert.equal(c.frames.name, 'plant2.frames.v1');
  assert.equal(c.frames.partitions, 24);
  assert.throws(() => createTopicCatalog({ names: { frames: 'bad name' } }), /topic name for frames/);
  assert.throws(() => createTopicCatalog({ partitions: { alerts: 0 } }), /partitions for alerts must be a positive integer/);
  assert.throws(() => createTopicCatalog({ names: { alerts: 'quality.defects.v1' } }), /used for two topics/);
});
