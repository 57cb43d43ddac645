/**
 * The fault suite's fleet: its own Kafka broker and Redis (so a scenario may stop and restart
 * them), and vision and sensor workers as separate processes, supervised the way Kubernetes or
 * compose would (a worker that exits on its own is started again after a short backoff, and
 * counted). Each scenario gets fresh topics and consumer groups; its inputs are a known set of
 * frames and sensor chunks with unique ids, plus poison records marked with `x-fault-case`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Admin, IHeaders, Kafka, Message, Producer } from 'kafkajs';
import sharp from 'sharp';
import { SENSOR_CHANNELS, createFramePlan, createSensorPlan } from '../../services/gateway-sim/src/index.js';
import { decodeAnomalyScore } from '../../shared/src/contracts/anomaly.js';
import { DLQ_HEADERS } from '../../shared/src/contracts/dead-letter.js';
import { headerText } from '../../shared/src/contracts/headers.js';
import { decodeInspection } from '../../shared/src/contracts/inspection.js';
import { FRAME_TOPIC_MAX_MESSAGE_BYTES } from '../../shared/src/contracts/topics.js';
import { createKafka } from '../../shared/src/kafka/client.js';
import { freePort, waitFor } from '../../deploy/local/processes.js';
import { REPO_ROOT, stackDown, stackUp, type StackOptions } from '../../deploy/local/stack.js';
import { createTopics, readTopicToEnd, uniqueName } from '../helpers/kafka.js';
import { healthzAnswers, readyzOk } from '../helpers/ops.js';
import { ownStackOptions } from '../helpers/stack.js';

export type WorkerKind = 'vision' | 'sensor';

/** Marks a poison record; the dead letter keeps the original headers, so it is found by this. */
export const FAULT_CASE_HEADER = 'x-fault-case';

/** Sizes of one scenario's input. */
export interface InputSize {
  frames: number;
  cameras: number;
  assets: number;
  /** Chunks of {@link CHUNK_SAMPLES} samples per asset. */
  chunksPerAsset: number;
}

const CHUNK_SAMPLES = 32;
/** The shipped sensor model's window (manifest inputShape[0], sequence.hop). */
const WINDOW = 64;
const HOP = 32;
const PERIOD_MS = 100;
/** Frames above this many bytes are dead-lettered as too-large (kept small so the poison stays cheap). */
const FRAME_MAX_BYTES = 512 * 1024;
const PARTITIONS = 6;

export interface ScenarioInputs {
  frames: Message[];
  frameIds: string[];
  readings: Message[];
  windowIds: string[];
  /** Poison records per input topic, each with a unique {@link FAULT_CASE_HEADER}. */
  poisonFrames: Message[];
  poisonReadings: Message[];
}

export interface Tally {
  inputs: number;
  results: number;
  deadLettered: number;
  lost: number;
  duplicated: number;
  /** Poison records without exactly one dead letter (missing or repeated). */
  poisonMisses: number;
  /** Dead letters of records that were valid (a false rejection counts as lost too). */
  wrongDeadLetters: number;
  reasons: Record<string, number>;
}

export interface WorkerExit {
  name: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  expected: boolean;
}

class WorkerProcess {
  child: ChildProcess | undefined;
  exits: WorkerExit[] = [];
  private stopping = false;
  private exited: Promise<WorkerExit> = Promise.resolve({ name: '', code: 0, signal: null, expected: true });
  private readonly log: WriteStream;

  constructor(
    readonly kind: WorkerKind,
    readonly name: string,
    /** Its METRICS_PORT: `/readyz` tells whether it considers itself ready. */
    readonly port: number,
    private readonly env: Record<string, string | undefined>,
    logDir: string,
    private readonly onUnexpectedExit: (w: WorkerProcess, exit: WorkerExit) => void,
  ) {
    this.log = createWriteStream(join(logDir, `${name}.log`), { flags: 'a' });
  }

  start(): void {
    this.stopping = false;
    const child = spawn(process.execPath, ['--import', 'tsx', `services/${this.kind}-worker/src/main.ts`], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...this.env, WORKER_ID: this.name, METRICS_PORT: String(this.port) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout.pipe(this.log, { end: false });
    child.stderr.pipe(this.log, { end: false });
    this.child = child;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        const exit = { name: this.name, code, signal, expected: this.stopping };
        this.exits.push(exit);
        if (!this.stopping) this.onUnexpectedExit(this, exit);
        resolve(exit);
      });
    });
  }

  /** `/readyz` answered 200 (false when it answered otherwise or not at all). */
  ready(): Promise<boolean> {
    return readyzOk(this.port);
  }

  /** Its ops server answers: the process is past loading its modules and handles SIGTERM itself. */
  started(): Promise<boolean> {
    return healthzAnswers(this.port);
  }

  get alive(): boolean {
    return this.child !== undefined && this.child.exitCode === null && this.child.signalCode === null;
  }

  /** Sends `signal` and waits for the exit (an expected one: the supervisor does not restart it). */
  async signal(signal: NodeJS.Signals, timeoutMs = 60_000): Promise<WorkerExit> {
    if (!this.alive) return this.exits.at(-1) ?? { name: this.name, code: null, signal: null, expected: true };
    this.stopping = true;
    this.child!.kill(signal);
    let timer: NodeJS.Timeout | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} did not exit within ${timeoutMs} ms of ${signal}`)), timeoutMs);
    });
    try {
      return await Promise.race([this.exited, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): void {
    this.log.end();
  }
}

export interface FleetOptions {
  /** Temp dir for the stack's state (a test stack dir: swept when its owner is gone). */
  dir: string;
  /** Where each worker process's output goes, `<worker>.log` (kept apart from `dir`, which a sweep removes). */
  logDir: string;
  visionWorkers: number;
  sensorWorkers: number;
  log: (line: string) => void;
}

/** One scenario's topics, groups and worker processes. */
export class ScenarioRun {
  readonly vision: { frames: string; inspections: string; defects: string; dlq: string; group: string };
  readonly sensor: { readings: string; scores: string; alerts: string; dlq: string; group: string };
  readonly workers: WorkerProcess[] = [];
  readonly unexpectedExits: WorkerExit[] = [];
  private restartTimers = new Set<NodeJS.Timeout>();

  constructor(
    private readonly fleet: Fleet,
    readonly id: string,
  ) {
    this.vision = { frames: `${id}.frames`, inspections: `${id}.inspections`, defects: `${id}.defects`, dlq: `${id}.frames.dlq`, group: `${id}-vision` };
    this.sensor = { readings: `${id}.readings`, scores: `${id}.scores`, alerts: `${id}.alerts`, dlq: `${id}.readings.dlq`, group: `${id}-sensor` };
  }

  private envFor(kind: WorkerKind): Record<string, string | undefined> {
    const common = {
      KAFKA_BROKERS: this.fleet.brokers.join(','),
      REDIS_URL: this.fleet.redisUrl,
      LOG_LEVEL: 'info',
      // The broker's minimum: a killed worker's partitions move within seconds.
      KAFKA_SESSION_TIMEOUT_MS: '6000',
      INFERENCE_THREADS: '1',
    };
    if (kind === 'vision') {
      return {
        ...common,
        VISION_GROUP_ID: this.vision.group,
        FRAMES_TOPIC: this.vision.frames,
        INSPECTIONS_TOPIC: this.vision.inspections,
        DEFECTS_TOPIC: this.vision.defects,
        FRAMES_DLQ_TOPIC: this.vision.dlq,
        FRAME_MAX_BYTES: String(FRAME_MAX_BYTES),
        // Small batches: a kill lands between transactions of a stream still in progress.
        VISION_MAX_BATCH_SIZE: '32',
      };
    }
    return {
      ...common,
      SENSOR_GROUP_ID: this.sensor.group,
      READINGS_TOPIC: this.sensor.readings,
      ANOMALY_SCORES_TOPIC: this.sensor.scores,
      ALERTS_TOPIC: this.sensor.alerts,
      READINGS_DLQ_TOPIC: this.sensor.dlq,
      // The simulator's pumps only: any other asset id is dead-lettered as unknown-asset.
      SENSOR_MODELS: 'pump-*=models/sim-asset-lstm-ae/1.1.0',
    };
  }

  async setUp(): Promise<void> {
    const admin = this.fleet.admin;
    await createTopics(admin, [this.vision.frames, this.vision.inspections, this.vision.defects, this.vision.dlq], PARTITIONS, {
      'max.message.bytes': String(FRAME_TOPIC_MAX_MESSAGE_BYTES),
    });
    await createTopics(admin, [this.sensor.readings, this.sensor.scores, this.sensor.alerts, this.sensor.dlq], PARTITIONS);
    const o = this.fleet.options;
    for (let i = 0; i < o.visionWorkers; i++) await this.addWorker('vision', i);
    for (let i = 0; i < o.sensorWorkers; i++) await this.addWorker('sensor', i);
    await this.waitMembers();
  }

  private async addWorker(kind: WorkerKind, i: number): Promise<WorkerProcess> {
    const w = new WorkerProcess(kind, `${this.id}-${kind}-${i}`, await freePort(), this.envFor(kind), this.fleet.options.logDir, (worker, exit) => {
      // What an orchestrator does: start it again after a backoff; the suite counts every such exit.
      this.unexpectedExits.push(exit);
      this.fleet.options.log(`  ${worker.name} exited on its own (code ${exit.code}, signal ${exit.signal}); restarting it`);
      const timer = setTimeout(() => {
        this.restartTimers.delete(timer);
        worker.start();
      }, 1000);
      this.restartTimers.add(timer);
    });
    w.start();
    this.workers.push(w);
    return w;
  }

  /**
   * Until the groups are stable with exactly the live worker processes as members (by client id,
   * which is the worker id): a killed member stays in its group until its session times out, so a
   * count alone would pass while the replacement is still loading.
   */
  async waitMembers(timeoutMs = 120_000): Promise<void> {
    const want = (kind: WorkerKind) => this.workers.filter((w) => w.kind === kind && w.alive).map((w) => w.name);
    await waitFor(
      async () => {
        const { groups } = await this.fleet.admin.describeGroups([this.vision.group, this.sensor.group]);
        const ok = (group: string, kind: WorkerKind) => {
          const g = groups.find((x) => x.groupId === group);
          const members = (g?.members ?? []).map((m) => m.clientId).sort();
          return g?.state === 'Stable' && JSON.stringify(members) === JSON.stringify(want(kind).sort());
        };
        return ok(this.vision.group, 'vision') && ok(this.sensor.group, 'sensor');
      },
      { what: `${want('vision').join(', ')} and ${want('sensor').join(', ')} (and no one else) in their groups`, timeoutMs, intervalMs: 250 },
    );
  }

  /**
   * Until every live worker's `/readyz` says `want`; returns how long that took, or undefined
   * when the deadline passed first (the caller reports it).
   */
  async waitReadiness(want: boolean, timeoutMs: number): Promise<number | undefined> {
    const t0 = Date.now();
    try {
      await waitFor(async () => (await Promise.all(this.workers.filter((w) => w.alive).map((w) => w.ready()))).every((r) => r === want), {
        what: `every worker ${want ? 'ready' : 'not ready'}`,
        timeoutMs,
        intervalMs: 200,
      });
      return Date.now() - t0;
    } catch {
      return undefined;
    }
  }

  workersOf(kind: WorkerKind): WorkerProcess[] {
    return this.workers.filter((w) => w.kind === kind);
  }

  async produce(topic: string, messages: Message[]): Promise<void> {
    for (let i = 0; i < messages.length; i += 200) {
      await this.fleet.producer.send({ topic, messages: messages.slice(i, i + 200) });
    }
  }

  /** Records the groups have committed, over both input topics. */
  async committed(): Promise<number> {
    const total = async (group: string, topic: string) => {
      const r = await this.fleet.admin.fetchOffsets({ groupId: group, topics: [topic] });
      return r[0]?.partitions.reduce((a, p) => a + Math.max(0, Number(p.offset)), 0) ?? 0;
    };
    return (await total(this.vision.group, this.vision.frames)) + (await total(this.sensor.group, this.sensor.readings));
  }

  /** Records on both input topics (their end offsets). */
  async produced(): Promise<number> {
    let n = 0;
    for (const topic of [this.vision.frames, this.sensor.readings]) {
      for (const p of await this.fleet.admin.fetchTopicOffsets(topic)) n += Number(p.offset);
    }
    return n;
  }

  /** Until both groups have committed everything produced so far. */
  async waitCaughtUp(timeoutMs: number): Promise<void> {
    const produced = await this.produced();
    await waitFor(async () => (await this.committed()) >= produced, {
      what: `the workers to commit all ${produced} input records`,
      timeoutMs,
      intervalMs: 250,
    });
  }

  /** Stops every worker gracefully; returns the exits (code 0 expected). */
  async stopAll(): Promise<WorkerExit[]> {
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    // A worker restarted after a fault may still be loading its modules when the rest has caught
    // up; a SIGTERM then ends it at once (exit 0 through early-signals.ts, or by the signal in its
    // first moments) instead of stopping it gracefully. The graceful stop under test is that of a
    // started worker: wait until each has its ops server up.
    await waitFor(async () => (await Promise.all(this.workers.map(async (w) => !w.alive || (await w.started())))).every(Boolean), {
      what: 'every running worker to have started (ops server up)',
      timeoutMs: 60_000,
      intervalMs: 100,
    });
    const exits = await Promise.all(this.workers.filter((w) => w.alive).map((w) => w.signal('SIGTERM')));
    for (const w of this.workers) w.close();
    return exits;
  }

  /** Kills every worker at once (clean-up after a failed scenario). */
  killAll(): void {
    for (const t of this.restartTimers) clearTimeout(t);
    this.restartTimers.clear();
    for (const w of this.workers) {
      if (w.alive) void w.signal('SIGKILL').catch(() => undefined);
      w.close();
    }
  }

  /** Reads every output and dead letter with a read_committed consumer and tallies them against the inputs. */
  async tally(inputs: ScenarioInputs): Promise<{ vision: Tally; sensor: Tally }> {
    const kafka = this.fleet.kafka;
    const [inspections, frameDlq, scores, readingDlq] = await Promise.all([
      readTopicToEnd(kafka, this.vision.inspections, 60_000),
      readTopicToEnd(kafka, this.vision.dlq, 60_000),
      readTopicToEnd(kafka, this.sensor.scores, 60_000),
      readTopicToEnd(kafka, this.sensor.dlq, 60_000),
    ]);
    const frameResults = inspections.map((m) => {
      const r = decodeInspection(m);
      if (!r.ok) throw new Error(`an inspection breaks its contract: ${r.error.message}`);
      return r.value.frameId;
    });
    const windowResults = scores.map((m) => {
      const r = decodeAnomalyScore(m);
      if (!r.ok) throw new Error(`a score breaks its contract: ${r.error.message}`);
      return r.value.windowId;
    });
    return {
      vision: tallyOf(inputs.frameIds, frameResults, inputs.frames.length + inputs.poisonFrames.length, inputs.poisonFrames, frameDlq),
      sensor: tallyOf(inputs.windowIds, windowResults, inputs.readings.length + inputs.poisonReadings.length, inputs.poisonReadings, readingDlq),
    };
  }
}

function tallyOf(
  expected: string[],
  results: string[],
  inputs: number,
  poison: Message[],
  deadLetters: { headers?: IHeaders }[],
): Tally {
  const counts = new Map<string, number>();
  for (const id of results) counts.set(id, (counts.get(id) ?? 0) + 1);
  const expectedSet = new Set(expected);
  const lost = expected.filter((id) => !counts.has(id)).length;
  // A result for an id nobody sent is as wrong as a second one.
  const duplicated = [...counts].reduce((n, [id, c]) => n + (expectedSet.has(id) ? c - 1 : c), 0);
  const cases = new Map<string, number>();
  const reasons: Record<string, number> = {};
  let wrong = 0;
  for (const d of deadLetters) {
    const fault = headerText(d.headers, FAULT_CASE_HEADER);
    const reason = headerText(d.headers, DLQ_HEADERS.reason) ?? '(none)';
    reasons[reason] = (reasons[reason] ?? 0) + 1;
    if (fault === undefined) wrong += 1;
    else cases.set(fault, (cases.get(fault) ?? 0) + 1);
  }
  const poisonMisses = poison.filter((m) => cases.get(headerText(m.headers, FAULT_CASE_HEADER)!) !== 1).length;
  return { inputs, results: results.length, deadLettered: deadLetters.length, lost, duplicated, poisonMisses, wrongDeadLetters: wrong, reasons };
}

/** The fleet's stack: started in `dir` on free ports, so this suite never touches another stack. */
export class Fleet {
  brokers: string[] = [];
  redisUrl = '';
  kafka!: Kafka;
  admin!: Admin;
  producer!: Producer;
  private stackOptions!: StackOptions;

  constructor(readonly options: FleetOptions) {}

  async start(): Promise<void> {
    this.stackOptions = await ownStackOptions(this.options.dir, (line) => this.options.log(`  [stack] ${line}`));
    const handle = await stackUp(this.stackOptions);
    this.brokers = handle.kafkaBrokers;
    this.redisUrl = handle.redisUrl;
    await this.connect();
  }

  private async connect(): Promise<void> {
    this.kafka = createKafka({ brokers: this.brokers, clientId: uniqueName('faults') });
    this.admin = this.kafka.admin();
    await this.admin.connect();
    this.producer = this.kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
    await this.producer.connect();
  }

  async newRun(name: string): Promise<ScenarioRun> {
    const run = new ScenarioRun(this, uniqueName(`faults-${name}`));
    await run.setUp();
    return run;
  }

  /** SIGTERM (Redis flushes its append-only file) and gone until {@link startRedis}. */
  stopRedis(): Promise<void> {
    return stackDown({ ...this.stackOptions, components: ['redis'] });
  }

  async startRedis(): Promise<void> {
    await stackUp({ ...this.stackOptions, log: () => undefined });
  }

  /** A controlled shutdown of the broker; the suite's own clients are closed first and reopened after. */
  async stopKafka(): Promise<void> {
    await this.producer.disconnect();
    await this.admin.disconnect();
    await stackDown({ ...this.stackOptions, components: ['kafka'] });
  }

  async startKafka(): Promise<void> {
    await stackUp({ ...this.stackOptions, log: () => undefined });
    await this.connect();
  }

  async close(): Promise<void> {
    await this.producer?.disconnect().catch(() => undefined);
    await this.admin?.disconnect().catch(() => undefined);
    await stackDown({ ...this.stackOptions, log: () => undefined });
  }
}

/**
 * A scenario's known input: frames with unique frame ids (and their expected inspections),
 * sensor chunks with unique chunk ids (and the window ids the shipped model's windows give),
 * and, when asked, poison records of every kind the contracts reject.
 */
export async function scenarioInputs(runId: string, size: InputSize, withPoison: boolean): Promise<ScenarioInputs> {
  // Event times just behind the wall clock: inside the sensor worker's clock-skew limits.
  const start = Date.now() - 10 * 60_000;
  const framePlan = createFramePlan({ seed: 7, runId, start, lines: 1, camerasPerLine: size.cameras });
  const planned = await framePlan.take(size.frames);
  const frames = planned.map((p) => p.record as Message);
  const frameIds = frames.map((m) => headerText(m.headers, 'frame-id')!);

  const sensorPlan = createSensorPlan({ seed: 11, runId, start, assets: size.assets, format: 'chunk', chunkSize: CHUNK_SAMPLES, periodMs: PERIOD_MS, anomalyRate: 0.1 });
  const chunks = sensorPlan.takeSync(size.assets * size.chunksPerAsset);
  const readings = chunks.map((c) => c.record as Message);
  const windowIds: string[] = [];
  const firstSample = new Map<string, number>();
  for (const c of chunks) {
    const asset = String(c.record.key);
    if (!firstSample.has(asset)) firstSample.set(asset, c.eventTime);
  }
  const samples = size.chunksPerAsset * CHUNK_SAMPLES;
  for (const [asset, t0] of firstSample) {
    for (let k = 0; k * HOP + WINDOW <= samples; k++) windowIds.push(`${asset}@${t0 + k * HOP * PERIOD_MS}`);
  }
  if (!withPoison) return { frames, frameIds, readings, windowIds, poisonFrames: [], poisonReadings: [] };

  const png = (await createFramePlan({ seed: 9, runId: `${runId}-png`, start, imageFormat: 'png' }).take(1))[0]!.record as Message;
  // The simulator sends no JPEG: one made from a gray frame's pixels.
  const gray = frames[0]!;
  const [width, height] = [Number(headerText(gray.headers, 'width')), Number(headerText(gray.headers, 'height'))];
  const jpegBytes = await sharp(gray.value as Buffer, { raw: { width, height, channels: 1 } }).jpeg().toBuffer();
  const jpeg: Message = { ...gray, value: jpegBytes, headers: { ...gray.headers, 'content-type': 'image/jpeg' } };
  return { frames, frameIds, readings, windowIds, poisonFrames: poisonFrames(runId, frames[0]!, png, jpeg), poisonReadings: poisonReadings(runId, start) };
}

function withCase(m: Message, fault: string, edit: (headers: Record<string, string>) => void = () => undefined): Message {
  const headers: Record<string, string> = {};
  for (const k of Object.keys(m.headers ?? {})) headers[k] = headerText(m.headers, k) ?? '';
  headers['frame-id'] = `${fault}`;
  edit(headers);
  headers[FAULT_CASE_HEADER] = fault;
  return { ...m, headers };
}

function poisonFrames(runId: string, gray: Message, png: Message, jpeg: Message): Message[] {
  const id = (k: string) => `${runId}/poison/${k}`;
  const bytes = (m: Message) => m.value as Buffer;
  const random = Buffer.alloc(4096);
  for (let i = 0; i < random.length; i++) random[i] = (i * 2654435761) >>> 24;
  return [
    { ...withCase(png, id('random-bytes')), value: random },
    { ...withCase(png, id('truncated-png')), value: bytes(png).subarray(0, Math.floor(bytes(png).length / 2)) },
    { ...withCase(jpeg, id('truncated-jpeg')), value: bytes(jpeg).subarray(0, Math.floor(bytes(jpeg).length / 2)) },
    { ...withCase(gray, id('too-large')), value: Buffer.alloc(FRAME_MAX_BYTES + 1024, 7) },
    withCase(gray, id('wrong-dimensions'), (h) => (h.width = String(Number(h.width) + 3))),
    withCase(png, id('unknown-type'), (h) => (h['content-type'] = 'image/gif')),
    withCase(gray, id('missing-camera-id'), (h) => delete h['camera-id']),
    withCase(gray, id('missing-frame-id'), (h) => delete h['frame-id']),
    withCase(gray, id('ts-beyond-contract'), (h) => (h['captured-at'] = '99999999999999999')),
    withCase(gray, id('ts-negative'), (h) => (h['captured-at'] = '-5')),
  ];
}

function poisonReadings(runId: string, start: number): Message[] {
  const channels = [...SENSOR_CHANNELS];
  const chunk = (k: string, patch: Record<string, unknown>, asset = 'pump-1') =>
    JSON.stringify({ assetId: asset, chunkId: `${runId}/poison/${k}`, t0: start, periodMs: PERIOD_MS, channels, samples: [channels.map(() => 1)], ...patch });
  const record = (k: string, value: string | Buffer, headers: Record<string, string> = { 'content-type': 'application/json' }, asset = 'pump-1'): Message => ({
    key: asset,
    value,
    headers: { ...headers, [FAULT_CASE_HEADER]: `${runId}/poison/${k}` },
  });
  const random = Buffer.alloc(512);
  for (let i = 0; i < random.length; i++) random[i] = (i * 40503) & 0xff;
  return [
    record('random-bytes', random),
    record('invalid-json', '{"assetId": "pump-1", "samples": [[1, 2'),
    record('nan', chunk('nan', {}).replace('[1,1,1,1,1,1,1,1]', '[NaN,1,1,1,1,1,1,1]')),
    record('infinity', chunk('infinity', {}).replace('[1,1,1,1,1,1,1,1]', '[1e999,1,1,1,1,1,1,1]')),
    record('ts-far-past', chunk('ts-far-past', { t0: Date.UTC(2001, 0, 1) })),
    record('ts-far-future', chunk('ts-far-future', { t0: Date.now() + 30 * 86_400_000 })),
    record('unknown-channel', chunk('unknown-channel', { channels: [...channels.slice(0, 7), 'flux-capacitor'] })),
    // Readings carry no required headers; the id is in the JSON.
    record('missing-chunk-id', chunk('missing-chunk-id', { chunkId: undefined })),
    // Valid in itself, but at the stream's first event time: behind pump-1's window by then.
    record('late-sample', chunk('late-sample', {})),
    record('unknown-asset', chunk('unknown-asset', {}, 'no-such-asset'), { 'content-type': 'application/json' }, 'no-such-asset'),
  ];
}

/** Interleaves `poison` evenly into `valid`. */
export function interleave(valid: Message[], poison: Message[]): Message[] {
  if (poison.length === 0) return valid;
  const out: Message[] = [];
  const every = Math.max(1, Math.floor(valid.length / (poison.length + 1)));
  let p = 0;
  valid.forEach((m, i) => {
    out.push(m);
    if ((i + 1) % every === 0 && p < poison.length) out.push(poison[p++]!);
  });
  while (p < poison.length) out.push(poison[p++]!);
  return out;
}
