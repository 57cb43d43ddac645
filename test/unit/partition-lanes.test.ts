import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createLogger } from '../../shared/src/log/logger.js';
import { PartitionSeek, createPartitionLanes, type LaneBatch, type PartitionControl, type PreparedBatch } from '../../shared/src/worker/partition-lanes.js';
import { waitFor } from '../helpers/wait.js';

/** Partition lanes with a controllable prepare and commit, recording what the consumer was told. */
function harness(options: { maxPending?: number; holdMs?: (topic: string, partition: number) => number } = {}) {
  const calls: string[] = [];
  const control: PartitionControl = {
    pause: (t, p) => calls.push(`pause ${t}:${p}`),
    resume: (t, p) => calls.push(`resume ${t}:${p}`),
    seek: (t, p, o) => calls.push(`seek ${t}:${p}@${o}`),
  };
  const prepares = new Map<string, { resolve: (v: string) => void; reject: (e: Error) => void }>();
  const commits: { offsets: string[]; resolve: () => void; reject: (e: Error) => void; current: () => boolean }[] = [];
  const lanes = createPartitionLanes<LaneBatch, string>({
    prepare: (b) => new Promise<string>((resolve, reject) => prepares.set(b.firstOffset()!, { resolve, reject })),
    commit: (prepared: PreparedBatch<LaneBatch, string>[], current) =>
      new Promise<void>((resolve, reject) => commits.push({ offsets: prepared.map((p) => p.value), resolve, reject, current })),
    control,
    backoff: { initialMs: 10, maxMs: 10 },
    ...options,
    logger: createLogger({ service: 'lanes-test', level: 'silent' }),
  });
  const batch = (partition: number, first: number, last = first): LaneBatch => ({ topic: 't', partition, firstOffset: () => String(first), lastOffset: () => String(last) });
  const prepared = (offset: number) => prepares.get(String(offset))!.resolve(`v${offset}`);
  return { lanes, calls, prepares, commits, batch, prepared };
}

test('batches commit in offset order; a commit takes every batch prepared meanwhile', async () => {
  const h = harness();
  for (const o of [0, 2, 4, 6]) assert.equal(h.lanes.offer(h.batch(0, o, o + 1)), true);
  // Later batches prepared first: nothing commits before the oldest is ready.
  h.prepared(2);
  h.prepared(4);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.commits.length, 0);
  h.prepared(0);
  await waitFor(() => h.commits.length === 1, { what: 'the first commit' });
  assert.deepEqual(h.commits[0]!.offsets, ['v0', 'v2', 'v4'], 'the ready prefix, in order');
  h.prepared(6);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.commits.length, 1, 'one commit at a time per partition');
  h.commits[0]!.resolve();
  await waitFor(() => h.commits.length === 2, { what: 'the second commit' });
  assert.deepEqual(h.commits[1]!.offsets, ['v6']);
  h.commits[1]!.resolve();
  await h.lanes.idle();
  assert.equal(h.lanes.pending, 0);
  assert.deepEqual(h.calls, [], 'no pause, seek or resume');
});

test('holdMs: a commit that must wait takes the batches prepared while it waits', async () => {
  let releaseAt = performance.now() + 40;
  const asked: string[] = [];
  const h = harness({
    holdMs: (topic, partition) => {
      asked.push(`${topic}:${partition}`);
      return Math.max(0, releaseAt - performance.now());
    },
  });
  for (const o of [0, 2]) h.lanes.offer(h.batch(3, o, o + 1));
  h.prepared(0);
  await new Promise((r) => setImmediate(r));
  assert.equal(h.commits.length, 0, 'held: no commit before holdMs has passed');
  assert.deepEqual(asked, ['t:3']);
  h.prepared(2);
  await waitFor(() => h.commits.length === 1, { what: 'the held commit' });
  assert.ok(performance.now() >= releaseAt - 1, 'not before the hold ended');
  assert.deepEqual(h.commits[0]!.offsets, ['v0', 'v2'], 'the batch prepared during the hold joins the commit');
  // No hold: the next ready batch commits at once.
  releaseAt = 0;
  h.lanes.offer(h.batch(3, 4, 5));
  h.prepared(4);
  h.commits[0]!.resolve();
  await waitFor(() => h.commits.length === 2, { what: 'the next commit' });
  assert.deepEqual(h.commits[1]!.offsets, ['v4']);
  h.commits[1]!.resolve();
  await h.lanes.idle();
});

test('partitions do not wait for each other', async () => {
  const h = harness();
  h.lanes.offer(h.batch(0, 0));
  h.lanes.offer(h.batch(1, 0));
  h.prepares.get('0')!.resolve('p');
  await waitFor(() => h.commits.length === 1, { what: 'one commit' });
  h.commits[0]!.resolve();
  await waitFor(() => h.lanes.pending === 1, { what: 'partition 0 or 1 committed alone' });
});

test('a failed commit drops the uncommitted batches, seeks back to the first and resumes after the backoff', async () => {
  const h = harness();
  h.lanes.offer(h.batch(0, 10, 14));
  h.lanes.offer(h.batch(0, 15, 19));
  h.prepared(10);
  await waitFor(() => h.commits.length === 1, { what: 'a commit' });
  h.prepared(15);
  const first = h.commits[0]!;
  first.reject(new Error('broker said no'));
  await waitFor(() => h.calls.length >= 2, { what: 'pause and seek' });
  assert.deepEqual(h.calls.slice(0, 2), ['pause t:0', 'seek t:0@10']);
  assert.equal(first.current(), false, 'the failed generation is no longer current');
  assert.equal(h.lanes.offer(h.batch(0, 15, 19)), false, 'a batch fetched before the seek is refused while recovering');
  await waitFor(() => h.calls.includes('resume t:0'), { what: 'resume after the backoff' });
  assert.equal(h.commits.length, 1, 'the dropped batch at 15 never commits');
  assert.equal(h.lanes.offer(h.batch(0, 10, 19)), true, 'the re-read batch is taken');
  h.prepared(10);
  await waitFor(() => h.commits.length === 2, { what: 'the retry commit' });
  h.commits[1]!.resolve();
  await h.lanes.idle();
});

test('a failed prepare fails its lane at its turn; PartitionSeek continues at the given offset without backoff', async () => {
  const h = harness();
  h.lanes.offer(h.batch(0, 0));
  h.prepares.get('0')!.reject(new Error('redis down'));
  await waitFor(() => h.calls.includes('seek t:0@0'), { what: 'seek back to 0' });
  await waitFor(() => h.calls.includes('resume t:0'), { what: 'resume' });
  h.calls.length = 0;
  h.lanes.offer(h.batch(0, 0, 3));
  h.prepared(0);
  await waitFor(() => h.commits.length === 1, { what: 'a commit' });
  h.commits[0]!.reject(new PartitionSeek('9', 'a previous owner committed up to 9'));
  await waitFor(() => h.calls.includes('resume t:0'), { what: 'resume' });
  assert.deepEqual(h.calls, ['pause t:0', 'seek t:0@9', 'resume t:0']);
});

test('backpressure: a partition with maxPending uncommitted batches is paused until they commit', async () => {
  const h = harness({ maxPending: 2 });
  h.lanes.offer(h.batch(0, 0));
  assert.deepEqual(h.calls, []);
  h.lanes.offer(h.batch(0, 1));
  assert.deepEqual(h.calls, ['pause t:0']);
  h.prepared(0);
  h.prepared(1);
  await waitFor(() => h.commits.length === 1, { what: 'a commit' });
  h.commits[0]!.resolve();
  await waitFor(() => h.calls.includes('resume t:0'), { what: 'resume' });
});

test('a rebalance drops uncommitted work; a commit of the old generation finishes but counts for nothing', async () => {
  const h = harness({ maxPending: 1 });
  h.lanes.offer(h.batch(0, 0));
  h.prepared(0);
  await waitFor(() => h.commits.length === 1, { what: 'a commit' });
  const old = h.commits[0]!;
  h.lanes.reset();
  assert.equal(old.current(), false);
  assert.equal(h.lanes.pending, 0);
  assert.deepEqual(h.calls, ['pause t:0', 'resume t:0'], 'a partition the lane paused is resumed');
  // The same records come again from the committed offset; they wait for the old commit to end.
  h.lanes.offer(h.batch(0, 0));
  h.prepares.get('0')!.resolve('again');
  await new Promise((r) => setImmediate(r));
  assert.equal(h.commits.length, 1, 'commits of one partition never overlap');
  old.reject(new Error('fenced'));
  await waitFor(() => h.commits.length === 2, { what: 'the new generation commits' });
  assert.deepEqual(h.commits[1]!.offsets, ['again']);
  h.commits[1]!.resolve();
  await h.lanes.idle();
});
