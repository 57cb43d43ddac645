// First, as in client.ts: the patches go in before kafkajs loads.
import { coordinatorCache } from '../../shared/src/kafka/kafkajs-patches.js';
import assert from 'node:assert/strict';
import { createServer, Socket, type AddressInfo } from 'node:net';
import { mock, test } from 'node:test';
import { noDelaySocketFactory } from '../../shared/src/kafka/client.js';
import { rememberingCoordinators, type CoordinatorCluster } from '../../shared/src/kafka/kafkajs-coordinators.js';

/** A cluster whose coordinator of every key is `node` (changeable), counting lookups. */
function fakeCluster(brokers: Record<number, { nodeId: number; endTxn(): Promise<string>; name: string }>) {
  const state = { node: 1, lookups: 0, known: new Set(Object.keys(brokers).map(Number)) };
  const cluster = {
    label: 'the cluster',
    findGroupCoordinator({ groupId }: { groupId: string; coordinatorType?: number }) {
      state.lookups += 1;
      assert.ok(groupId.length > 0);
      return Promise.resolve(brokers[state.node]!);
    },
    findBroker({ nodeId }: { nodeId: number }) {
      if (!state.known.has(nodeId)) return Promise.reject(Object.assign(new Error(`broker ${nodeId} not found`), { name: 'KafkaJSBrokerNotFound' }));
      return Promise.resolve(brokers[nodeId]!);
    },
  } satisfies CoordinatorCluster & { label: string };
  return { cluster, state };
}

const broker = (nodeId: number, fail?: () => Error) => ({
  nodeId,
  name: `broker-${nodeId}`,
  endTxn: () => (fail ? Promise.reject(fail()) : Promise.resolve(`committed on ${nodeId}`)),
});

test('the transaction manager patch is in place when the patches load before kafkajs', () => {
  assert.deepEqual(coordinatorCache, { transactionCoordinators: true, reasons: [] });
});

test('a coordinator is looked up once per type and key, then remembered', async () => {
  const { cluster, state } = fakeCluster({ 1: broker(1) });
  const { cluster: view, lookups } = rememberingCoordinators(cluster);
  for (let i = 0; i < 5; i++) {
    const b = (await view.findGroupCoordinator({ groupId: 'vision.g.frames.0', coordinatorType: 1 }));
    assert.equal(await b.endTxn(), 'committed on 1');
    assert.equal(b.name, 'broker-1');
  }
  // Another key, and the same key as a group coordinator (type 0): each looked up once.
  await view.findGroupCoordinator({ groupId: 'vision-group' });
  await view.findGroupCoordinator({ groupId: 'vision-group', coordinatorType: 0 });
  await view.findGroupCoordinator({ groupId: 'vision.g.frames.0' });
  assert.equal(state.lookups, 3);
  assert.deepEqual(lookups, { asked: 3, remembered: 5 });
  // Everything else is the cluster's own.
  assert.equal(view.label, 'the cluster');
});

test('a failed request to a remembered coordinator makes the next call look it up again', async () => {
  const { cluster, state } = fakeCluster({ 1: broker(1, () => Object.assign(new Error('This is not the correct coordinator'), { type: 'NOT_COORDINATOR' })), 2: broker(2) });
  const { cluster: view } = rememberingCoordinators(cluster);
  const key = { groupId: 'tx-1', coordinatorType: 1 };
  const first = (await view.findGroupCoordinator(key));
  state.node = 2; // the coordinator moved
  await assert.rejects(first.endTxn(), { type: 'NOT_COORDINATOR' });
  const second = (await view.findGroupCoordinator(key));
  assert.equal(state.lookups, 2);
  assert.equal(await second.endTxn(), 'committed on 2');
  // And remembered again from there.
  await view.findGroupCoordinator(key);
  assert.equal(state.lookups, 2);
});

test('a remembered coordinator that left the cluster is looked up again', async () => {
  const { cluster, state } = fakeCluster({ 1: broker(1), 2: broker(2) });
  const { cluster: view } = rememberingCoordinators(cluster);
  await view.findGroupCoordinator({ groupId: 'tx-2', coordinatorType: 1 });
  state.known.delete(1);
  state.node = 2;
  const b = (await view.findGroupCoordinator({ groupId: 'tx-2', coordinatorType: 1 }));
  assert.equal(b.nodeId, 2);
  assert.equal(state.lookups, 2);
});

test('a failed lookup is not remembered', async () => {
  const { cluster, state } = fakeCluster({ 1: broker(1) });
  let down = true;
  const flaky = { ...cluster, findGroupCoordinator: async (a: { groupId: string; coordinatorType?: number }) => (down ? Promise.reject(new Error('COORDINATOR_NOT_AVAILABLE')) : cluster.findGroupCoordinator(a)) };
  const { cluster: view } = rememberingCoordinators(flaky);
  await assert.rejects(view.findGroupCoordinator({ groupId: 'tx-3', coordinatorType: 1 }), /COORDINATOR_NOT_AVAILABLE/);
  down = false;
  await view.findGroupCoordinator({ groupId: 'tx-3', coordinatorType: 1 });
  await view.findGroupCoordinator({ groupId: 'tx-3', coordinatorType: 1 });
  assert.equal(state.lookups, 1);
});

test('broker connections switch Nagle off (TCP_NODELAY), as the Java client does', async () => {
  const server = createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const setNoDelay = mock.method(Socket.prototype, 'setNoDelay');
  try {
    const { port } = server.address() as AddressInfo;
    const socket = await new Promise<Socket>((resolve) => {
      const s = noDelaySocketFactory({ host: '127.0.0.1', port, ssl: false as never, onConnect: () => resolve(s) });
    });
    assert.ok(setNoDelay.mock.calls.some((c) => c.this === socket && (c.arguments[0] === true || c.arguments.length === 0)));
    socket.destroy();
  } finally {
    setNoDelay.mock.restore();
    await new Promise((r) => server.close(r));
  }
});
