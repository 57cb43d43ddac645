/**
 * deploy/k8s: every YAML document parses, every kustomization's files exist, and each
 * kustomization's build (resources, components, strategic-merge patches, images, namespace: the
 * subset of kustomize these manifests use, modelled below) is checked against the code: probes and
 * ports, grace period against SHUTDOWN_TIMEOUT_MS, selectors, env names the workers read and
 * their validation, KEDA triggers against the consumer groups and the topic catalog, the GPU
 * variant. No cluster here: nothing is applied. Where kubectl is installed, its kustomize render
 * is compared with the model.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { loadConfig as loadSensorConfig } from '../../services/sensor-worker/src/config.js';
import { loadConfig as loadVisionConfig } from '../../services/vision-worker/src/config.js';
import { DEFAULT_TOPICS } from '../../shared/src/contracts/topics.js';
import { isRecord, rec, workerEnvNames, type Rec } from '../helpers/deploy.js';

const REPO_ROOT = fileURLToPath(new URL('../../', import.meta.url));
const K8S_DIR = join(REPO_ROOT, 'deploy/k8s');

/**
 * Variables the workers are about to read but their config.ts does not parse yet. Remove
 * METRICS_PORT from this list once services/{vision,sensor}-worker/src/config.ts read it.
 */
const DEFAULT_METRICS_PORT = 9464;
const METRICS_PORT_NAME = 'metrics';
const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
/** The kustomization fields the model below implements; any other would be silently ignored. */
const MODELLED_FIELDS = new Set(['apiVersion', 'kind', 'resources', 'components', 'patches', 'namespace', 'images']);

type Env = Record<string, string>;

function list(v: unknown, what: string): unknown[] {
  if (v === undefined) return [];
  assert.ok(Array.isArray(v), `${what} is a list`);
  return v as unknown[];
}
function str(v: unknown, what: string): string {
  assert.ok(typeof v === 'string' && v !== '', `${what} is a non-empty string`);
  return v;
}
/** Walks a path of keys; undefined where any step is missing. */
function at(v: unknown, ...path: string[]): unknown {
  let cur = v;
  for (const key of path) cur = isRecord(cur) ? cur[key] : undefined;
  return cur;
}
const nameOf = (o: Rec): string => String(at(o, 'metadata', 'name'));
const idOf = (o: Rec): string => `${String(o.kind)}/${nameOf(o)}`;

// ---------------------------------------------------------------------------------------------
// The workers: what their config.ts reads, and their own validation.

type WorkerService = 'vision-worker' | 'sensor-worker';
interface LoadedConfig {
  groupId: string;
  inputTopic: string;
  kafkaBrokers: string[];
  shutdownTimeoutMs: number;
  engine: string;
  modelDirs: string[];
}
const LOADERS: Record<WorkerService, (env: Env) => LoadedConfig> = {
  'vision-worker': (env) => {
    const c = loadVisionConfig(env, REPO_ROOT);
    return { groupId: c.groupId, inputTopic: c.topics.frames, kafkaBrokers: c.kafkaBrokers, shutdownTimeoutMs: c.shutdownTimeoutMs, engine: c.engine, modelDirs: [c.modelDir] };
  },
  'sensor-worker': (env) => {
    const c = loadSensorConfig(env, REPO_ROOT);
    return {
      groupId: c.groupId,
      inputTopic: c.topics.readings,
      kafkaBrokers: c.kafkaBrokers,
      shutdownTimeoutMs: c.shutdownTimeoutMs,
      engine: c.engine,
      modelDirs: c.models.map((m) => m.modelDir),
    };
  },
};

/** The worker a container runs, from its command (`node dist/services/<service>/src/main.js`). */
function workerOf(container: Rec): WorkerService | undefined {
  const cmd = [...list(container.command, 'command'), ...list(container.args, 'args')].map(String);
  const m = cmd[0] === 'node' ? /^dist\/services\/(vision-worker|sensor-worker)\/src\/main\.js$/.exec(cmd[1] ?? '') : null;
  return m?.[1] as WorkerService | undefined;
}

// ---------------------------------------------------------------------------------------------
// Files and the kustomize model.

function yamlFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .map((f) => join(dir, f))
    .filter((f) => /\.ya?ml$/.test(f) || KUSTOMIZATION_FILES.some((k) => f.endsWith(`/${k}`)))
    .sort();
}

const parsedFiles = new Map<string, Rec[]>();
/** Every non-empty document of a file, each a mapping; YAML errors fail. */
function documents(file: string): Rec[] {
  let docs = parsedFiles.get(file);
  if (!docs) {
    const rel = relative(REPO_ROOT, file);
    docs = parseAllDocuments(readFileSync(file, 'utf8')).flatMap((d) => {
      assert.deepEqual(d.errors, [], `${rel}: YAML errors`);
      const js = d.toJS() as unknown;
      return js === null || js === undefined ? [] : [rec(js, `a document of ${rel}`)];
    });
    parsedFiles.set(file, docs);
  }
  return docs.map((d) => structuredClone(d));
}

function kustomizationFile(dir: string): string | undefined {
  return KUSTOMIZATION_FILES.map((k) => join(dir, k)).find((f) => existsSync(f));
}
function kustomization(dir: string): Rec {
  const file = kustomizationFile(dir);
  assert.ok(file, `${relative(REPO_ROOT, dir)} has a kustomization`);
  const docs = documents(file);
  assert.equal(docs.length, 1, `${relative(REPO_ROOT, file)}: one document`);
  return docs[0] ?? {};
}

/** Lists in built-in kinds that a strategic-merge patch merges by `name` (the rest are replaced). */
const MERGE_BY_NAME = new Set(['containers', 'initContainers', 'env', 'volumes']);

/** Strategic merge as kustomize does it for these manifests; custom resources (no schema) replace lists. */
function strategicMerge(base: unknown, patch: unknown, builtin: boolean, key?: string): unknown {
  if (isRecord(base) && isRecord(patch)) {
    const out: Rec = { ...base };
    for (const [k, v] of Object.entries(patch)) {
      if (v === null) delete out[k];
      else out[k] = strategicMerge(base[k], v, builtin, k);
    }
    return out;
  }
  if (builtin && key !== undefined && MERGE_BY_NAME.has(key) && Array.isArray(base) && Array.isArray(patch)) {
    const out: unknown[] = [...(base as unknown[])];
    for (const item of patch as unknown[]) {
      const i = out.findIndex((x) => isRecord(x) && isRecord(item) && x.name === item.name);
      if (i >= 0) out[i] = strategicMerge(out[i], item, builtin);
      else out.push(item);
    }
    return out;
  }
  return structuredClone(patch);
}

/** `registry:5000/repo/name:tag` -> name and tag (a colon after the last slash starts the tag). */
function splitImage(image: string): { name: string; tag: string | undefined } {
  const slash = image.lastIndexOf('/');
  const colon = image.lastIndexOf(':');
  return colon > slash ? { name: image.slice(0, colon), tag: image.slice(colon + 1) } : { name: image, tag: undefined };
}
function podContainers(o: Rec): Rec[] {
  const spec = at(o, 'spec', 'template', 'spec');
  return [...list(at(spec, 'containers'), 'containers'), ...list(at(spec, 'initContainers'), 'initContainers')].map((c) => rec(c, 'container'));
}

interface Build {
  dir: string;
  objects: Rec[];
  /** Files this build read as resources or patches (absolute). */
  files: Set<string>;
}

/** Applies the kustomization in `dir` (a Kustomization, or a Component onto `acc`). */
function build(dir: string, acc: Rec[] = [], files = new Set<string>()): Build {
  const k = kustomization(dir);
  const rel = relative(REPO_ROOT, dir);
  const kind = str(k.kind, `${rel}: kind`);
  assert.ok(kind === 'Kustomization' || kind === 'Component', `${rel}: kind Kustomization or Component`);
  for (const field of Object.keys(k)) assert.ok(MODELLED_FIELDS.has(field), `${rel}: "${field}" is not modelled by this test; extend the test before using it`);
  const objects = kind === 'Component' ? acc : [];
  for (const entry of list(k.resources, `${rel}: resources`)) {
    const path = resolve(dir, str(entry, `${rel}: resource`));
    assert.ok(existsSync(path), `${rel}: resource ${String(entry)} exists`);
    if (statSync(path).isDirectory()) objects.push(...build(path, [], files).objects);
    else {
      files.add(path);
      objects.push(...documents(path));
    }
  }
  for (const entry of list(k.components, `${rel}: components`)) {
    const path = resolve(dir, str(entry, `${rel}: component`));
    assert.ok(existsSync(path) && statSync(path).isDirectory(), `${rel}: component ${String(entry)} is a folder`);
    assert.equal(kustomization(path).kind, 'Component', `${relative(REPO_ROOT, path)}: kind Component`);
    build(path, objects, files);
  }
  for (const entry of list(k.patches, `${rel}: patches`)) {
    const p = rec(entry, `${rel}: patch`);
    assert.deepEqual(Object.keys(p), ['path'], `${rel}: patches are strategic-merge files (path only)`);
    const path = resolve(dir, str(p.path, `${rel}: patch path`));
    assert.ok(existsSync(path), `${rel}: patch ${String(p.path)} exists`);
    files.add(path);
    const docs = documents(path);
    assert.equal(docs.length, 1, `${relative(REPO_ROOT, path)}: one patch per file`);
    const patch = docs[0] ?? {};
    const i = objects.findIndex((o) => o.kind === patch.kind && nameOf(o) === nameOf(patch) && o.apiVersion === patch.apiVersion);
    assert.ok(i >= 0, `${relative(REPO_ROOT, path)}: patches ${idOf(patch)} (${String(patch.apiVersion)}), which this build has`);
    const builtin = !str(patch.apiVersion, 'patch apiVersion').split('/')[0]?.includes('.');
    objects[i] = rec(strategicMerge(objects[i], patch, builtin), 'patched object');
  }
  for (const entry of list(k.images, `${rel}: images`)) {
    const img = rec(entry, `${rel}: image`);
    const from = str(img.name, `${rel}: images name`);
    let matched = 0;
    for (const c of objects.flatMap((o) => (o.kind === 'Deployment' ? podContainers(o) : []))) {
      const { name, tag } = splitImage(String(c.image));
      if (name !== from) continue;
      matched++;
      const newTag = typeof img.newTag === 'string' ? img.newTag : tag;
      c.image = `${typeof img.newName === 'string' ? img.newName : name}${newTag === undefined ? '' : `:${newTag}`}`;
    }
    assert.ok(matched > 0, `${rel}: images entry ${from} matches a container image (otherwise it does nothing)`);
  }
  if (k.namespace !== undefined) {
    const ns = str(k.namespace, `${rel}: namespace`);
    for (const o of objects) {
      const meta = rec(o.metadata, `${idOf(o)} metadata`);
      if (o.kind === 'Namespace') meta.name = ns;
      else meta.namespace = ns;
    }
  }
  return { dir, objects, files };
}

const allFiles = yamlFiles(K8S_DIR);
const kustomizationDirs = allFiles.filter((f) => KUSTOMIZATION_FILES.some((k) => f.endsWith(`/${k}`))).map((f) => dirname(f));
/** Builds of every Kustomization (Components are built as part of the overlays that use them). */
const builds = (): Build[] => kustomizationDirs.filter((d) => kustomization(d).kind === 'Kustomization').map((d) => build(d));
const buildOf = (dir: string): Build => build(join(K8S_DIR, dir));
const label = (b: Build): string => relative(REPO_ROOT, b.dir);

// ---------------------------------------------------------------------------------------------
// Per-build helpers.

const findObject = (b: Build, kind: string, name: string): Rec | undefined => b.objects.find((o) => o.kind === kind && nameOf(o) === name);
const matchesLabels = (selector: unknown, labels: unknown): boolean =>
  isRecord(selector) && Object.keys(selector).length > 0 && isRecord(labels) && Object.entries(selector).every(([k, v]) => labels[k] === v);
const templateLabels = (d: Rec): unknown => at(d, 'spec', 'template', 'metadata', 'labels');

interface WorkerDeployment {
  deployment: Rec;
  container: Rec;
  service: WorkerService;
  /** What the container sees: envFrom in order, then env (which wins). */
  env: Env;
  config: LoadedConfig;
}

/** The one worker container of a Deployment, its effective environment and its loaded config. */
function workerDeployment(b: Build, d: Rec): WorkerDeployment {
  const where = `${label(b)}: ${idOf(d)}`;
  const workers = podContainers(d).flatMap((c) => {
    const s = workerOf(c);
    return s ? [{ c, s }] : [];
  });
  assert.equal(workers.length, 1, `${where}: one container runs a worker (node dist/services/<worker>/src/main.js)`);
  const { c: container, s: service } = workers[0] ?? { c: {}, s: 'vision-worker' as const };
  const known = workerEnvNames(service);
  const env: Env = {};
  const put = (name: string, value: string, from: string) => {
    assert.ok(known.has(name), `${where}: ${name} (from ${from}) is not a variable services/${service}/src/config.ts reads`);
    env[name] = value;
  };
  for (const entry of list(container.envFrom, `${where} envFrom`)) {
    const src = rec(entry, `${where} envFrom item`);
    const cm = at(src, 'configMapRef', 'name');
    const secret = at(src, 'secretRef', 'name');
    if (typeof cm === 'string') {
      const obj = findObject(b, 'ConfigMap', cm);
      assert.ok(obj, `${where}: ConfigMap ${cm} is in the build`);
      for (const [k, v] of Object.entries(rec(obj.data ?? {}, `ConfigMap ${cm} data`))) {
        assert.equal(typeof v, 'string', `ConfigMap ${cm}: ${k} is a string (the API rejects numbers in data)`);
        put(k, String(v), `ConfigMap ${cm}`);
      }
    } else if (typeof secret === 'string') {
      const obj = findObject(b, 'Secret', secret);
      // A base may leave the Secret to its overlays; a deployable build (with a Namespace) may not.
      assert.ok(obj || !b.objects.some((o) => o.kind === 'Namespace'), `${where}: Secret ${secret} is in the build`);
      if (!obj) continue;
      for (const [k, v] of Object.entries(rec(obj.stringData ?? {}, `Secret ${secret} stringData`))) put(k, String(v), `Secret ${secret}`);
      for (const [k, v] of Object.entries(rec(obj.data ?? {}, `Secret ${secret} data`))) put(k, Buffer.from(String(v), 'base64').toString('utf8'), `Secret ${secret}`);
    } else assert.fail(`${where}: envFrom item is a configMapRef or a secretRef`);
  }
  for (const entry of list(container.env, `${where} env`)) {
    const e = rec(entry, `${where} env item`);
    assert.equal(typeof e.value, 'string', `${where}: env ${String(e.name)} has a string value`);
    put(str(e.name, `${where} env name`), String(e.value), 'env');
  }
  let config: LoadedConfig | undefined;
  assert.doesNotThrow(() => {
    config = LOADERS[service](env);
  }, `${where}: the environment passes services/${service}/src/config.ts`);
  assert.ok(config);
  return { deployment: d, container, service, env, config };
}

const workerDeployments = (b: Build): WorkerDeployment[] => b.objects.filter((o) => o.kind === 'Deployment').map((d) => workerDeployment(b, d));

function quantity(v: unknown, what: string, kind: 'cpu' | 'memory'): number {
  const text = typeof v === 'number' ? String(v) : str(v, what);
  const m = kind === 'cpu' ? /^(\d+(?:\.\d+)?)(m)?$/.exec(text) : /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(text);
  assert.ok(m, `${what}: "${text}" is a ${kind} quantity`);
  const scale: Record<string, number> = { '': 1, m: 0.001, Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (scale[m[2] ?? ''] ?? NaN);
}

function probePath(container: Rec, probe: string): { path: string; port: unknown } | undefined {
  const p = container[probe];
  if (p === undefined) return undefined;
  return { path: str(at(p, 'httpGet', 'path'), `${probe}.httpGet.path`), port: at(p, 'httpGet', 'port') };
}

const gpuLimit = (c: Rec): unknown => at(c, 'resources', 'limits', 'nvidia.com/gpu');

// ---------------------------------------------------------------------------------------------

test('every YAML document under deploy/k8s parses, and every file belongs to a kustomization', () => {
  assert.ok(allFiles.length >= 8, 'found the manifests');
  const used = new Set<string>(kustomizationDirs.map((d) => kustomizationFile(d) ?? ''));
  for (const file of allFiles) documents(file);
  for (const b of builds()) for (const f of b.files) used.add(f);
  const orphans = allFiles.filter((f) => !used.has(f)).map((f) => relative(REPO_ROOT, f));
  assert.deepEqual(orphans, [], 'YAML files no kustomization uses');
  for (const dir of ['base', 'overlays/example']) assert.ok(kustomizationFile(join(K8S_DIR, dir)), `deploy/k8s/${dir} is a kustomization`);
});

test('every build: apiVersion, kind and a DNS-1123 metadata.name on every object, no duplicates', () => {
  for (const b of builds()) {
    const seen = new Set<string>();
    for (const o of b.objects) {
      str(o.apiVersion, `${label(b)}: apiVersion of ${idOf(o)}`);
      str(o.kind, `${label(b)}: kind`);
      assert.match(nameOf(o), /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/, `${label(b)}: ${idOf(o)} name`);
      assert.ok(!seen.has(idOf(o)), `${label(b)}: ${idOf(o)} defined once`);
      seen.add(idOf(o));
    }
    assert.ok(b.objects.length > 0, `${label(b)}: not empty`);
  }
});

test('Deployments: selector matches the template, probes on /healthz and /readyz at the metrics port, resources, grace above SHUTDOWN_TIMEOUT_MS', () => {
  for (const b of builds()) {
    const workers = workerDeployments(b);
    assert.deepEqual(workers.map((w) => w.service).sort(), ['sensor-worker', 'vision-worker'], `${label(b)}: one Deployment per worker kind`);
    for (const { deployment: d, container: c, env, config } of workers) {
      const where = `${label(b)}: ${idOf(d)}`;
      const selector = at(d, 'spec', 'selector', 'matchLabels');
      assert.ok(matchesLabels(selector, templateLabels(d)), `${where}: spec.selector.matchLabels is a non-empty subset of the template labels`);
      for (const l of ['app.kubernetes.io/name', 'app.kubernetes.io/part-of']) {
        assert.ok(isRecord(templateLabels(d)) && l in rec(templateLabels(d), 'labels'), `${where}: template label ${l}`);
        assert.ok(l in rec(at(d, 'metadata', 'labels'), `${where} labels`), `${where}: label ${l}`);
      }
      str(c.image, `${where}: container image`);

      const metricsPort = Number(env.METRICS_PORT ?? DEFAULT_METRICS_PORT);
      const ports = list(c.ports, `${where} ports`).map((p) => rec(p, 'port'));
      const named = ports.find((p) => p.name === METRICS_PORT_NAME);
      assert.ok(named, `${where}: a container port named ${METRICS_PORT_NAME}`);
      assert.equal(named.containerPort, metricsPort, `${where}: the metrics port is METRICS_PORT (${metricsPort})`);
      const live = probePath(c, 'livenessProbe');
      const ready = probePath(c, 'readinessProbe');
      const startup = probePath(c, 'startupProbe');
      assert.equal(live?.path, '/healthz', `${where}: liveness on /healthz`);
      assert.equal(ready?.path, '/readyz', `${where}: readiness on /readyz`);
      if (startup) assert.equal(startup.path, '/healthz', `${where}: startup probe on /healthz`);
      for (const p of [live, ready, startup]) {
        if (p) assert.ok(p.port === METRICS_PORT_NAME || p.port === metricsPort, `${where}: probe port is the metrics port, got ${String(p.port)}`);
      }

      for (const kind of ['cpu', 'memory'] as const) {
        const request = quantity(at(c, 'resources', 'requests', kind), `${where}: requests.${kind}`, kind);
        const limit = quantity(at(c, 'resources', 'limits', kind), `${where}: limits.${kind}`, kind);
        assert.ok(request > 0 && request <= limit, `${where}: ${kind} request within its limit`);
      }

      const grace = at(d, 'spec', 'template', 'spec', 'terminationGracePeriodSeconds');
      assert.ok(typeof grace === 'number' && grace > config.shutdownTimeoutMs / 1000, `${where}: terminationGracePeriodSeconds ${String(grace)} > SHUTDOWN_TIMEOUT_MS / 1000 (${config.shutdownTimeoutMs / 1000})`);
      for (const dir of config.modelDirs) assert.ok(existsSync(join(dir, 'manifest.json')), `${where}: model ${dir} ships in the image (models/)`);
      const podSecurity = at(d, 'spec', 'template', 'spec', 'securityContext');
      if (at(podSecurity, 'runAsNonRoot') === true) assert.equal(typeof at(podSecurity, 'runAsUser'), 'number', `${where}: runAsNonRoot needs a numeric runAsUser (the image's USER is a name)`);
      assert.equal(at(d, 'spec', 'strategy', 'rollingUpdate', 'maxSurge'), 0, `${where}: no surge (a pod beyond the partitions never turns ready)`);
    }
  }
});

test('every ConfigMap is used by a worker, and Services and PodDisruptionBudgets select a worker Deployment', () => {
  for (const b of builds()) {
    const workers = workerDeployments(b);
    const refs = new Set(workers.flatMap((w) => list(w.container.envFrom, 'envFrom').map((e) => at(e, 'configMapRef', 'name'))));
    for (const cm of b.objects.filter((o) => o.kind === 'ConfigMap')) assert.ok(refs.has(nameOf(cm)), `${label(b)}: ConfigMap ${nameOf(cm)} is used by a worker`);
    for (const svc of b.objects.filter((o) => o.kind === 'Service')) {
      const where = `${label(b)}: ${idOf(svc)}`;
      const target = workers.find((w) => matchesLabels(at(svc, 'spec', 'selector'), templateLabels(w.deployment)));
      assert.ok(target, `${where}: its selector matches a worker Deployment's pod labels`);
      const port = list(at(svc, 'spec', 'ports'), `${where} ports`)
        .map((p) => rec(p, 'port'))
        .find((p) => p.name === METRICS_PORT_NAME);
      assert.ok(port, `${where}: a port named ${METRICS_PORT_NAME}`);
      assert.equal(port.port, DEFAULT_METRICS_PORT, `${where}: port ${DEFAULT_METRICS_PORT}`);
      const metricsPort = Number(target.env.METRICS_PORT ?? DEFAULT_METRICS_PORT);
      assert.ok(port.targetPort === METRICS_PORT_NAME || port.targetPort === metricsPort, `${where}: targetPort is the pods' metrics port`);
    }
    for (const pdb of b.objects.filter((o) => o.kind === 'PodDisruptionBudget')) {
      const where = `${label(b)}: ${idOf(pdb)}`;
      assert.ok(
        workers.some((w) => matchesLabels(at(pdb, 'spec', 'selector', 'matchLabels'), templateLabels(w.deployment))),
        `${where}: its selector matches a worker Deployment's pod labels`,
      );
      assert.ok(at(pdb, 'spec', 'maxUnavailable') !== undefined, `${where}: maxUnavailable (minAvailable 1 at one replica would block every drain)`);
    }
    for (const w of workers) {
      for (const kind of ['Service', 'PodDisruptionBudget']) {
        const selectorPath = kind === 'Service' ? ['spec', 'selector'] : ['spec', 'selector', 'matchLabels'];
        assert.ok(
          b.objects.some((o) => o.kind === kind && matchesLabels(at(o, ...selectorPath), templateLabels(w.deployment))),
          `${label(b)}: ${w.service} has a ${kind}`,
        );
      }
    }
  }
});

test('KEDA ScaledObjects: one per worker, kafka lag on its group and input topic, at most one replica per partition', () => {
  for (const b of builds()) {
    const workers = workerDeployments(b);
    const scaled = b.objects.filter((o) => o.kind === 'ScaledObject');
    for (const w of workers) {
      const where = `${label(b)}: ${w.service}`;
      const mine = scaled.filter((s) => at(s, 'spec', 'scaleTargetRef', 'name') === nameOf(w.deployment));
      assert.equal(mine.length, 1, `${where}: one ScaledObject targets Deployment ${nameOf(w.deployment)}`);
      const so = mine[0] ?? {};
      assert.equal(so.apiVersion, 'keda.sh/v1alpha1');
      const kind = at(so, 'spec', 'scaleTargetRef', 'kind');
      assert.ok(kind === undefined || kind === 'Deployment', `${where}: scaleTargetRef is a Deployment`);
      assert.equal(at(w.deployment, 'spec', 'replicas'), undefined, `${where}: the Deployment sets no replicas (the ScaledObject's HPA owns them)`);
      const partitions = DEFAULT_TOPICS.find((t) => t.name === w.config.inputTopic)?.partitions;
      assert.ok(partitions !== undefined, `${where}: input topic ${w.config.inputTopic} is in the catalog`);
      const min = at(so, 'spec', 'minReplicaCount');
      const max = at(so, 'spec', 'maxReplicaCount');
      assert.ok(typeof min === 'number' && min >= 1, `${where}: minReplicaCount >= 1 (a worker always runs)`);
      assert.ok(typeof max === 'number' && max >= min && max <= partitions, `${where}: maxReplicaCount ${String(max)} within ${String(min)}..${partitions} (partitions of ${w.config.inputTopic})`);
      const triggers = list(at(so, 'spec', 'triggers'), `${where} triggers`).map((t) => rec(t, 'trigger'));
      assert.ok(triggers.length > 0, `${where}: has triggers`);
      for (const t of triggers) {
        assert.equal(t.type, 'kafka', `${where}: trigger type kafka`);
        const md = rec(t.metadata, `${where} trigger metadata`);
        for (const [k, v] of Object.entries(md)) assert.equal(typeof v, 'string', `${where}: trigger metadata ${k} is a string (KEDA reads a string map)`);
        assert.equal(md.consumerGroup, w.config.groupId, `${where}: consumerGroup is the worker's group`);
        assert.equal(md.topic, w.config.inputTopic, `${where}: topic is the worker's input topic`);
        assert.deepEqual(String(md.bootstrapServers).split(','), w.config.kafkaBrokers, `${where}: bootstrapServers are the worker's KAFKA_BROKERS`);
        assert.match(String(md.lagThreshold), /^[1-9]\d*$/, `${where}: lagThreshold is a positive integer`);
      }
    }
    for (const s of scaled) assert.ok(workers.some((w) => nameOf(w.deployment) === at(s, 'spec', 'scaleTargetRef', 'name')), `${label(b)}: ${idOf(s)} targets a worker Deployment`);
  }
  const base = buildOf('base');
  for (const s of base.objects.filter((o) => o.kind === 'ScaledObject')) {
    assert.equal(at(s, 'spec', 'minReplicaCount'), 1, `base: ${idOf(s)} minReplicaCount 1`);
    const topic = String(at(list(at(s, 'spec', 'triggers'), 'triggers')[0], 'metadata', 'topic'));
    const partitions = DEFAULT_TOPICS.find((t) => t.name === topic)?.partitions;
    assert.equal(at(s, 'spec', 'maxReplicaCount'), partitions, `base: ${idOf(s)} maxReplicaCount = the partitions of ${topic}`);
  }
});

test('the example overlay: namespace, image from a registry, the Secret with REDIS_URL', () => {
  const b = buildOf('overlays/example');
  const ns = b.objects.filter((o) => o.kind === 'Namespace');
  assert.equal(ns.length, 1, 'creates its namespace');
  for (const o of b.objects.filter((x) => x.kind !== 'Namespace')) assert.equal(at(o, 'metadata', 'namespace'), nameOf(ns[0] ?? {}), `${idOf(o)} in the namespace`);
  for (const w of workerDeployments(b)) {
    assert.match(String(w.container.image), /^[^/]+\.[^/]+\//, `${w.service}: image from a registry`);
    assert.ok(w.env.REDIS_URL !== undefined && new URL(w.env.REDIS_URL).password !== '', `${w.service}: REDIS_URL with credentials from the Secret`);
  }
  const secretRefs = new Set(
    workerDeployments(b).flatMap((w) => list(w.container.envFrom, 'envFrom').map((e) => at(e, 'secretRef', 'name')).filter((n) => n !== undefined)),
  );
  assert.ok(secretRefs.size > 0, 'workers read a Secret');
  for (const cm of b.objects.filter((o) => o.kind === 'ConfigMap')) {
    assert.doesNotMatch(JSON.stringify(cm.data ?? {}), /:\/\/[^/\s"]*:[^@/\s"]+@/, `ConfigMap ${nameOf(cm)} holds no URL with credentials`);
  }
});

test('GPU variant: the vision worker gets one nvidia.com/gpu, GPU nodes, the gpu image and INFERENCE_ENGINE=tfjs-tensorflow; CPU builds get none', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'deploy/docker/Dockerfile'), 'utf8');
  assert.match(dockerfile, /^FROM\s+\S+\s+AS\s+gpu\s*$/im, 'the Dockerfile has a gpu target');
  let gpuBuilds = 0;
  for (const b of builds()) {
    for (const w of workerDeployments(b)) {
      const where = `${label(b)}: ${w.service}`;
      const limit = gpuLimit(w.container);
      if (limit === undefined) {
        assert.notEqual(w.config.engine, 'tfjs-tensorflow', `${where}: tfjs-tensorflow without a GPU`);
        continue;
      }
      gpuBuilds++;
      assert.equal(w.service, 'vision-worker', `${where}: only the vision worker runs on a GPU`);
      assert.equal(Number(limit), 1, `${where}: nvidia.com/gpu limit 1`);
      const podSpec = at(w.deployment, 'spec', 'template', 'spec');
      const selector = at(podSpec, 'nodeSelector');
      assert.ok(isRecord(selector) && Object.keys(selector).length > 0, `${where}: a nodeSelector for GPU nodes`);
      const tolerations = list(at(podSpec, 'tolerations'), `${where} tolerations`);
      assert.ok(tolerations.some((t) => at(t, 'key') === 'nvidia.com/gpu'), `${where}: tolerates the nvidia.com/gpu taint`);
      assert.equal(w.config.engine, 'tfjs-tensorflow', `${where}: INFERENCE_ENGINE=tfjs-tensorflow (auto would pick ONNX Runtime on the CPU)`);
      assert.match(splitImage(String(w.container.image)).name, /gpu/, `${where}: the gpu image`);
    }
  }
  assert.ok(gpuBuilds > 0, 'a build runs the vision worker on a GPU');
  assert.ok(workerDeployments(buildOf('base')).every((w) => gpuLimit(w.container) === undefined), 'base needs no GPU');
});

const kubectl = spawnSync('kubectl', ['version', '--client'], { encoding: 'utf8' });
test('where kubectl is installed, its kustomize render equals the model above', { skip: kubectl.status !== 0 && 'kubectl not installed' }, () => {
  const sortKey = (o: Rec) => idOf(o);
  for (const b of builds()) {
    const out = spawnSync('kubectl', ['kustomize', b.dir], { encoding: 'utf8' });
    assert.equal(out.status, 0, `kubectl kustomize ${label(b)}: ${out.stderr}`);
    const rendered = parseAllDocuments(out.stdout).map((d) => rec(d.toJS() as unknown, 'rendered'));
    const expected = [...b.objects].sort((x, y) => sortKey(x).localeCompare(sortKey(y)));
    rendered.sort((x, y) => sortKey(x).localeCompare(sortKey(y)));
    assert.deepEqual(rendered, expected, `${label(b)}: kubectl kustomize and the test's model agree`);
  }
});
