/**
 * docker-compose.yml and deploy/docker/Dockerfile, checked for structure: neither can be built or
 * run on the build machine (no Docker engine). The workers' environment must be names their
 * config.ts reads and must pass their own validation; healthchecks, grace periods, scaling and
 * build targets must agree with the code and the Dockerfile.
 */
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseDocument } from 'yaml';
import { parseSimArgs } from '../../services/gateway-sim/src/config.js';
import { loadConfig as loadSensorConfig } from '../../services/sensor-worker/src/config.js';
import { loadConfig as loadVisionConfig } from '../../services/vision-worker/src/config.js';
import { DEFAULT_TOPICS } from '../../shared/src/contracts/topics.js';
import { isRecord, rec, workerEnvNames, type Rec } from '../helpers/deploy.js';
import { ENGINE_CHOICES } from '../../shared/src/inference/engine.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string): string => readFileSync(join(REPO_ROOT, path), 'utf8');

/**
 * Variables the workers are about to read but their config.ts does not parse yet. Remove
 * METRICS_PORT from this list once services/{vision,sensor}-worker/src/config.ts read it.
 */
const DEFAULT_METRICS_PORT = 9464;

type Env = Record<string, string>;


interface WorkerKind {
  service: 'vision-worker' | 'sensor-worker';
  /** The worker's own validation; returns what the checks below need. */
  load: (env: Env) => { shutdownTimeoutMs: number; kafkaBrokers: string[]; redisUrl: string; inputTopic: string; modelDirs: string[] };
}

const WORKERS: readonly WorkerKind[] = [
  {
    service: 'vision-worker',
    load: (env) => {
      const c = loadVisionConfig(env, REPO_ROOT);
      return { shutdownTimeoutMs: c.shutdownTimeoutMs, kafkaBrokers: c.kafkaBrokers, redisUrl: c.redisUrl, inputTopic: c.topics.frames, modelDirs: [c.modelDir] };
    },
  },
  {
    service: 'sensor-worker',
    load: (env) => {
      const c = loadSensorConfig(env, REPO_ROOT);
      return {
        shutdownTimeoutMs: c.shutdownTimeoutMs,
        kafkaBrokers: c.kafkaBrokers,
        redisUrl: c.redisUrl,
        inputTopic: c.topics.readings,
        modelDirs: c.models.map((m) => m.modelDir),
      };
    },
  },
];

/** A compose duration (`45s`, `1m30s`, `500ms`) in milliseconds. */
function composeDurationMs(v: unknown, what: string): number {
  assert.equal(typeof v, 'string', `${what} is a duration string`);
  const text = String(v);
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001, ns: 0.000001 };
  let ms = 0;
  let consumed = 0;
  for (const m of text.matchAll(/(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)/g)) {
    if (m.index !== consumed) break;
    ms += Number(m[1]) * (unit[m[2] ?? ''] ?? NaN);
    consumed += m[0].length;
  }
  assert.ok(consumed === text.length && consumed > 0 && Number.isFinite(ms), `${what}: "${text}" is a compose duration such as 45s or 1m30s`);
  return ms;
}

/** `environment:` as a mapping or as a list of `KEY=value`. */
function environment(service: Rec, name: string): Env {
  const raw = service.environment;
  if (raw === undefined) return {};
  const env: Env = {};
  if (Array.isArray(raw)) {
    for (const item of raw) {
      const m = /^([^=]+)=(.*)$/.exec(String(item));
      assert.ok(m, `${name}: environment item "${String(item)}" is KEY=value (a bare name would take the host's value)`);
      env[m[1] ?? ''] = m[2] ?? '';
    }
    return env;
  }
  for (const [k, v] of Object.entries(rec(raw, `${name}.environment`))) {
    assert.ok(typeof v === 'string' || typeof v === 'number' || typeof v === 'boolean', `${name}: ${k} has a value (an empty one would take the host's)`);
    env[k] = String(v);
  }
  return env;
}

function command(service: Rec, name: string): string[] {
  const c: unknown = service.command;
  assert.ok(Array.isArray(c), `${name}: command is a list (exec form: signals reach node)`);
  const items = c as unknown[];
  assert.ok(items.every((x) => typeof x === 'string'), `${name}: command is a list of strings`);
  return items;
}

/** The compiled entry point a command runs, as its TypeScript source (`dist/x/y.js` -> `x/y.ts`). */
function entrySource(cmd: readonly string[]): string | undefined {
  const m = cmd[0] === 'node' ? /^dist\/(.+)\.js$/.exec(cmd[1] ?? '') : null;
  return m ? `${m[1]}.ts` : undefined;
}

interface Stage {
  name: string | undefined;
  base: string;
  instructions: string[];
}

/** Dockerfile stages: `FROM <base> [AS <name>]` and the instructions under each (continuations joined). */
function dockerfileStages(text: string): Stage[] {
  const lines = text
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const from = /^FROM\s+(?:--platform=\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?\s*$/i.exec(line);
    if (from) stages.push({ base: from[1] ?? '', name: from[2], instructions: [] });
    else stages.at(-1)?.instructions.push(line);
  }
  return stages;
}

function stageEnv(stage: Stage): Env {
  const env: Env = {};
  for (const line of stage.instructions) {
    const m = /^ENV\s+(.*)$/i.exec(line);
    if (!m) continue;
    for (const pair of (m[1] ?? '').split(/\s+/)) {
      const eq = pair.indexOf('=');
      if (eq > 0) env[pair.slice(0, eq)] = pair.slice(eq + 1).replace(/^"(.*)"$/, '$1');
    }
  }
  return env;
}

const composeText = read('docker-compose.yml');
const composeDoc = parseDocument(composeText);
const compose = rec(composeDoc.toJS() as unknown, 'docker-compose.yml');
const services = rec(compose.services, 'services');
const service = (name: string): Rec => rec(services[name], `service ${name}`);
const dockerfilePath = 'deploy/docker/Dockerfile';
const stages = dockerfileStages(read(dockerfilePath));

function dependsOn(svc: Rec, name: string): Record<string, string> {
  const deps = rec(svc.depends_on, `${name}.depends_on`);
  return Object.fromEntries(Object.entries(deps).map(([k, v]) => [k, String(rec(v, `${name}.depends_on.${k}`).condition)]));
}

/** The compose service that creates the topic catalog and exits. */
function topicInitName(): string {
  const found = Object.entries(services).filter(([, v]) => {
    const cmd = isRecord(v) && Array.isArray(v.command) ? v.command.map(String) : [];
    return (cmd[1] === 'dist/deploy/local/cli.js' && cmd[2] === 'up') || cmd.includes('--create-topics');
  });
  const oneShot = found.filter(([, v]) => isRecord(v) && v.restart === 'no');
  assert.equal(oneShot.length, 1, 'exactly one one-shot (restart: "no") service creates the topics');
  return oneShot[0]?.[0] ?? '';
}

test('docker-compose.yml parses cleanly and has every service of the fleet', () => {
  assert.deepEqual(composeDoc.errors, [], 'no YAML errors');
  assert.deepEqual(composeDoc.warnings, [], 'no YAML warnings');
  for (const name of ['kafka', 'redis', 'vision-worker', 'sensor-worker', 'gateway-sim', topicInitName()]) assert.ok(isRecord(services[name]), `service ${name}`);
  assert.equal(service('kafka').image, 'apache/kafka:4.1.2', 'the Kafka version the local stack runs');
  assert.equal(rec(service('kafka').environment, 'kafka.environment').KAFKA_AUTO_CREATE_TOPICS_ENABLE, 'false', 'topics come from the catalog only');
});

test('the header says how to scale on one host and that nothing was built here', () => {
  const header = composeText.split('\n').filter((l) => l.startsWith('#')).join('\n');
  assert.match(header, /docker compose up[^\n]*--scale vision-worker=\d+/, 'the --scale command');
  assert.match(header, /never built/i, 'says it was never built or run here');
});

test('every command runs a compiled entry point that exists in the source tree', () => {
  for (const [name, raw] of Object.entries(services)) {
    const svc = rec(raw, name);
    if (svc.build === undefined) continue;
    const cmd = command(svc, name);
    const source = entrySource(cmd);
    assert.ok(source, `${name}: runs node dist/<path>.js, got ${cmd.join(' ')}`);
    assert.ok(existsSync(join(REPO_ROOT, source)), `${name}: ${source} exists`);
  }
});

test('build targets exist in the Dockerfile, and services sharing an image tag build the same target', () => {
  const names = stages.map((s) => s.name).filter((n): n is string => n !== undefined);
  assert.ok(names.includes('cpu') && names.includes('gpu'), `Dockerfile has cpu and gpu targets (has ${names.join(', ')})`);
  const targetOfImage = new Map<string, string>();
  let built = 0;
  for (const [name, raw] of Object.entries(services)) {
    const svc = rec(raw, name);
    if (svc.build === undefined) {
      assert.equal(typeof svc.image, 'string', `${name}: has an image or a build`);
      continue;
    }
    built++;
    const build = rec(svc.build, `${name}.build`);
    assert.equal(build.context, '.', `${name}: builds from the repository root`);
    assert.equal(build.dockerfile, dockerfilePath, `${name}: uses ${dockerfilePath}`);
    const target = String(build.target);
    assert.ok(names.includes(target), `${name}: target "${target}" is a stage of the Dockerfile`);
    if (typeof svc.image === 'string') {
      const seen = targetOfImage.get(svc.image);
      assert.ok(seen === undefined || seen === target, `${name}: image ${svc.image} is built from ${seen ?? ''} elsewhere, not ${target}`);
      targetOfImage.set(svc.image, target);
    }
  }
  assert.ok(built >= 4, 'the workers, the simulator and topic init build the product image');
});

test('the Dockerfile: COPY sources exist, cpu and gpu targets set a valid INFERENCE_ENGINE, gpu is CUDA 11.2 + cuDNN 8', () => {
  const names = new Set(stages.map((s) => s.name));
  for (const [i, stage] of stages.entries()) {
    const earlier = new Set(stages.slice(0, i).map((s) => s.name));
    if (!stage.base.includes(':') && !stage.base.includes('/')) assert.ok(earlier.has(stage.base), `FROM ${stage.base}: an earlier stage`);
    for (const line of stage.instructions) {
      const copy = /^COPY\s+(.*)$/i.exec(line);
      if (!copy) continue;
      const args = (copy[1] ?? '').split(/\s+/);
      const from = args.find((a) => a.startsWith('--from='))?.slice('--from='.length);
      if (from !== undefined) {
        assert.ok(earlier.has(from) || from.includes(':'), `COPY --from=${from}: an earlier stage or a tagged image`);
        continue;
      }
      for (const src of args.filter((a) => !a.startsWith('--')).slice(0, -1)) assert.ok(existsSync(join(REPO_ROOT, src)), `COPY ${src}: exists in the repository`);
    }
  }
  const stage = (name: string): Stage => {
    const s = stages.find((x) => x.name === name);
    assert.ok(s, `stage ${name}`);
    return s;
  };
  for (const name of ['cpu', 'gpu']) {
    const env = stageEnv(stage(name));
    assert.ok((ENGINE_CHOICES as readonly string[]).includes(env.INFERENCE_ENGINE ?? ''), `${name}: INFERENCE_ENGINE is one of ${ENGINE_CHOICES.join(', ')}`);
    assert.equal(env.METRICS_PORT, String(DEFAULT_METRICS_PORT), `${name}: METRICS_PORT`);
    assert.ok(stage(name).instructions.some((l) => /^USER\s+(node|1000)$/.test(l)), `${name}: runs as the unprivileged node user`);
  }
  assert.equal(stageEnv(stage('gpu')).INFERENCE_ENGINE, 'tfjs-tensorflow', 'gpu: TF.js on libtensorflow (auto would serve ONNX Runtime on the CPU)');
  assert.match(stage('gpu').base, /^nvidia\/cuda:11\.2(\.\d+)?-cudnn8-runtime-/, 'gpu: CUDA 11.2 + cuDNN 8 (tfjs-node-gpu 4.22 / libtensorflow 2.9.1)');
  const pkg = JSON.parse(read('package.json')) as { optionalDependencies?: Record<string, string> };
  assert.ok(pkg.optionalDependencies?.['@tensorflow/tfjs-node-gpu'], 'tfjs-node-gpu is an optional dependency');
  const gpuChain = new Set<string>(['gpu']);
  for (const line of stage('gpu').instructions) {
    const from = /--from=(\S+)/.exec(line)?.[1];
    if (from !== undefined && names.has(from)) gpuChain.add(from);
  }
  assert.ok(
    stages.some((s) => s.name !== undefined && gpuChain.has(s.name) && s.instructions.some((l) => /npm (rebuild|install)\b.*@tensorflow\/tfjs-node-gpu/.test(l))),
    'the gpu target gets node_modules from a stage that installs @tensorflow/tfjs-node-gpu',
  );
});

test('topic init: one shot after Kafka and Redis are healthy, against the same services as the workers', () => {
  const name = topicInitName();
  const init = service(name);
  const deps = dependsOn(init, name);
  assert.equal(deps.kafka, 'service_healthy');
  assert.equal(deps.redis, 'service_healthy');
  const env = environment(init, name);
  const vision = environment(service('vision-worker'), 'vision-worker');
  assert.equal(env.KAFKA_BROKERS, vision.KAFKA_BROKERS, 'same brokers as the workers');
  assert.equal(env.REDIS_URL, vision.REDIS_URL, 'same Redis as the workers (with both set, stack:up starts nothing)');
  assert.match(env.STACK_DIR ?? '', /^\/tmp\//, 'its lock file goes where the image user can write');
});

test('the simulator: flags and environment pass its own parser, after the topics exist', () => {
  const sim = service('gateway-sim');
  const cmd = command(sim, 'gateway-sim');
  const env = environment(sim, 'gateway-sim');
  const parsed = parseSimArgs(cmd.slice(2), env);
  assert.equal(parsed.help, false);
  if (parsed.help) return;
  const deps = dependsOn(sim, 'gateway-sim');
  assert.ok(parsed.config.kafka.createTopics || deps[topicInitName()] === 'service_completed_successfully', 'topics exist before it produces');
  assert.deepEqual(parsed.config.kafka.brokers, [environment(service('vision-worker'), 'vision-worker').KAFKA_BROKERS]);
  const vision = WORKERS[0]?.load(environment(service('vision-worker'), 'vision-worker'));
  const sensor = WORKERS[1]?.load(environment(service('sensor-worker'), 'sensor-worker'));
  assert.equal(parsed.config.frames.topic, vision?.inputTopic, 'produces what the vision worker consumes');
  assert.equal(parsed.config.readings.topic, sensor?.inputTopic, 'produces what the sensor worker consumes');
});

for (const worker of WORKERS) {
  const name = worker.service;

  test(`${name}: environment is only variables its config.ts reads, and passes loadConfig`, () => {
    const svc = service(name);
    assert.equal(entrySource(command(svc, name)), `services/${name}/src/main.ts`, 'runs the worker');
    const env = environment(svc, name);
    const known = workerEnvNames(name);
    const unknown = Object.keys(env).filter((k) => !known.has(k));
    assert.deepEqual(unknown, [], `${name}: variables its config.ts does not read`);
    const config = worker.load(env);
    for (const dir of config.modelDirs) assert.ok(existsSync(join(dir, 'manifest.json')), `${name}: model ${dir} is in the repository (the image copies models/)`);
    const kafkaEnv = rec(service('kafka').environment, 'kafka.environment');
    const advertised = String(kafkaEnv.KAFKA_ADVERTISED_LISTENERS)
      .split(',')
      .map((l) => l.replace(/^[A-Z_]+:\/\//, ''));
    for (const b of config.kafkaBrokers) assert.ok(advertised.includes(b), `${name}: broker ${b} is an advertised listener of kafka (${advertised.join(', ')})`);
    assert.ok(isRecord(services[new URL(config.redisUrl).hostname]), `${name}: REDIS_URL names a compose service`);
  });

  test(`${name}: healthcheck asks /healthz on METRICS_PORT with node (no curl in the image)`, () => {
    const svc = service(name);
    const env = environment(svc, name);
    assert.ok(env.METRICS_PORT !== undefined, `${name}: METRICS_PORT is set`);
    const port = Number(env.METRICS_PORT);
    assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `${name}: METRICS_PORT is a port`);
    const hc = rec(svc.healthcheck, `${name}.healthcheck`);
    const testCmd = Array.isArray(hc.test) ? hc.test.map(String) : [String(hc.test)];
    assert.ok(testCmd[0] === 'CMD' && testCmd[1] === 'node', `${name}: healthcheck runs node in exec form, got ${testCmd.join(' ')}`);
    const script = testCmd.join(' ');
    assert.doesNotMatch(script, /\b(curl|wget)\b/, 'node:20-bookworm-slim has neither');
    const url = /http:\/\/(?:127\.0\.0\.1|localhost):(\d+)\/healthz\b/.exec(script);
    assert.ok(url, `${name}: healthcheck fetches /healthz`);
    assert.equal(Number(url[1]), port, `${name}: healthcheck port equals METRICS_PORT`);
    assert.ok(composeDurationMs(hc.interval, `${name}.healthcheck.interval`) > 0);
    assert.ok(composeDurationMs(hc.timeout, `${name}.healthcheck.timeout`) < composeDurationMs(hc.interval, 'interval'), 'timeout below interval');
    assert.ok(Number.isInteger(hc.retries) && Number(hc.retries) > 0, `${name}: healthcheck retries`);
  });

  test(`${name}: stop grace above SHUTDOWN_TIMEOUT_MS, scalable (replicas within partitions, no fixed ports or names), waits for topic init`, () => {
    const svc = service(name);
    const config = worker.load(environment(svc, name));
    const grace = composeDurationMs(svc.stop_grace_period, `${name}.stop_grace_period`);
    assert.ok(grace > config.shutdownTimeoutMs, `${name}: stop_grace_period ${grace} ms > SHUTDOWN_TIMEOUT_MS ${config.shutdownTimeoutMs}`);
    const partitions = DEFAULT_TOPICS.find((t) => t.name === config.inputTopic)?.partitions;
    assert.ok(partitions !== undefined, `${name}: input topic ${config.inputTopic} is in the catalog`);
    const replicas = rec(svc.deploy, `${name}.deploy`).replicas;
    assert.ok(Number.isInteger(replicas) && Number(replicas) >= 1 && Number(replicas) <= partitions, `${name}: deploy.replicas within 1..${partitions}`);
    assert.equal(svc.ports, undefined, `${name}: publishes no host port (a second replica could not bind it)`);
    assert.equal(svc.container_name, undefined, `${name}: no container_name (--scale needs generated names)`);
    const deps = dependsOn(svc, name);
    assert.equal(deps[topicInitName()], 'service_completed_successfully', `${name}: starts after the topics exist`);
    assert.equal(deps.kafka, 'service_healthy');
    assert.equal(deps.redis, 'service_healthy');
  });
}
