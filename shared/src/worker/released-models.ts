/**
 * The models a worker serves, following the fleet's releases (shared/src/models/releases.ts):
 * `fleetctl models promote|rollback|shadow` write a release; every worker loads and warms the
 * named version beside the one serving, then switches between two batches, so that each input
 * partition sees one version up to an offset and the other from there on, and nothing is read
 * twice or skipped (the switch changes which model a batch is prepared with, not what is fetched
 * or committed).
 *
 * A clean boundary: a batch takes the models current when its preparation starts
 * ({@link ReleasedModels.enter} and {@link ReleasedModels.current}) and keeps them to the end,
 * and a replaced version is unloaded only after every batch that started with it has finished.
 * Since a partition's batches are prepared in offset order, its results change version once.
 *
 * A release this worker cannot apply (the folder is missing, the model does not load, or its
 * input differs from the one serving: another window, channel list or tile size needs new state,
 * so a new model name and a configuration change) is refused: the worker keeps serving what it
 * serves, logs why and reports the refusal, which `fleetctl` prints.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { Redis } from 'ioredis';
import type { ConnectionSecurity } from '../config/security.js';
import type { Logger } from '../log/logger.js';
import {
  RELEASE_CHANNEL,
  addShadowCounts,
  readRelease,
  releaseSchema,
  removeWorkerReport,
  reportWorkerModels,
  type Release,
  type WorkerModels,
} from '../models/releases.js';
import { addCounts, type ShadowCounts } from '../models/shadow.js';
import type { WorkerMetrics } from '../ops/metrics.js';
import type { ServedPoolModel, WorkerInference } from './worker-inference.js';

/** One loaded version and this worker kind's view of it (what its pipeline reads). */
export interface ServedVersion<T> {
  version: string;
  model: ServedPoolModel;
  view: T;
}

/** What a batch is prepared with: a model's live version and, during a shadow run, the candidate. */
export interface CurrentModels<T> {
  live: ServedVersion<T>;
  shadow?: ServedVersion<T>;
}

export interface ReleasedModelsOptions<T> {
  kind: string;
  /** The worker's settings: its id, and the Redis that holds the releases. */
  settings: { workerId: string; redisUrl: string; security?: ConnectionSecurity };
  inference: WorkerInference;
  metrics: WorkerMetrics;
  logger: Logger;
  /** This worker kind's view of a loaded model; throws when the kind cannot serve it. */
  view(model: ServedPoolModel): T;
  /** Why `next` cannot take over from `current` without new state (undefined: it can). */
  incompatible(current: T, next: T): string | undefined;
  /** Registry root of a model (its versions are `<root>/<name>/<version>`). @defaultValue two folders above the configured version folder */
  registryRoot?: string;
  /** Poll for releases this often besides pub/sub (a subscriber that was away misses announcements). @defaultValue 3000 */
  pollMs?: number;
  /** Refresh this worker's report this often. @defaultValue 5000 */
  reportMs?: number;
}

interface Entry<T> {
  name: string;
  root: string;
  current: CurrentModels<T>;
  /** The release last applied (0: none yet, the configured version). */
  seq: number;
  refused?: string;
}

/** Error of a release that cannot be applied here (the message is what the worker reports). */
class Refusal extends Error {}

export class ReleasedModels<T> {
  private readonly entries = new Map<string, Entry<T>>();
  private readonly redis: Redis;
  private subscriber: Redis | undefined;
  private timers: NodeJS.Timeout[] = [];
  /** Serialises release application. */
  private applying: Promise<void> = Promise.resolve();
  /** Bumped at every switch; batches in flight per generation. */
  private generation = 0;
  private readonly inflight = new Map<number, number>();
  private generationWaiters: (() => void)[] = [];
  private readonly tallies = new Map<string, { name: string; candidate: string; counts: ShadowCounts }>();
  private recordLog: { generation: number; logger: Logger } | undefined;
  private closed = false;

  private constructor(private readonly o: ReleasedModelsOptions<T>) {
    // Its own connection: the worker's Redis connects after set-up, and a subscriber needs one anyway.
    const { redisUrl, security } = o.settings;
    this.redis = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1, ...(security?.redisTls ? { tls: security.redisTls } : {}) });
    this.redis.on('error', () => undefined);
  }

  /**
   * Takes the models `inference` started with (configured versions), then applies each one's
   * release, if any, before the worker consumes: a worker that starts after a promote serves the
   * promoted version. Redis out of reach here is not fatal: the configured versions serve and
   * the poll applies releases when Redis answers.
   */
  static async start<T>(o: ReleasedModelsOptions<T>, configured: { dir: string; model: ServedPoolModel }[]): Promise<ReleasedModels<T>> {
    const r = new ReleasedModels(o);
    for (const { dir, model } of configured) {
      const name = model.manifest.name;
      if (r.entries.has(name)) continue;
      r.entries.set(name, { name, root: o.registryRoot ?? dirname(dirname(dir)), current: { live: { version: model.manifest.version, model, view: o.view(model) } }, seq: 0 });
    }
    try {
      await r.redis.connect();
      await r.poll();
    } catch (err) {
      o.logger.warn({ err }, 'model releases could not be read at start; serving the configured versions until Redis answers');
    }
    r.follow();
    return r;
  }

  /** The models of `name` as of now (take it once per batch, after {@link enter}). */
  current(name: string): CurrentModels<T> | undefined {
    return this.entries.get(name)?.current;
  }

  /** Every model served now, by name. */
  all(): Map<string, CurrentModels<T>> {
    return new Map([...this.entries].map(([name, e]) => [name, e.current]));
  }

  /**
   * The logger of per-record lines: they carry the live versions (`modelVersion`:
   * `name@version`, comma separated), made once per switch rather than once per batch.
   */
  recordLogger(): Logger {
    if (this.recordLog?.generation !== this.generation) {
      const modelVersion = [...this.entries.values()].map((e) => e.current.live.model.key).join(',');
      this.recordLog = { generation: this.generation, logger: this.o.logger.child({ modelVersion }) };
    }
    return this.recordLog.logger;
  }

  /** Marks a batch's preparation as started with the models current now; call the result when it ends. */
  enter(): () => void {
    const gen = this.generation;
    this.inflight.set(gen, (this.inflight.get(gen) ?? 0) + 1);
    let left = false;
    return () => {
      if (left) return;
      left = true;
      const n = (this.inflight.get(gen) ?? 1) - 1;
      if (n === 0) this.inflight.delete(gen);
      else this.inflight.set(gen, n);
      const w = this.generationWaiters;
      this.generationWaiters = [];
      for (const f of w) f();
    };
  }

  /** Adds what a shadow run compared (summed over the fleet in Redis every few seconds). */
  tally(name: string, candidate: string, counts: ShadowCounts): void {
    const key = `${name}@${candidate}`;
    const t = this.tallies.get(key) ?? { name, candidate, counts: {} };
    addCounts(t.counts, counts);
    this.tallies.set(key, t);
  }

  /** Stops following, flushes shadow tallies and removes this worker's report. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const t of this.timers) clearInterval(t);
    for (const f of this.generationWaiters.splice(0)) f();
    this.subscriber?.disconnect();
    await this.applying.catch(() => undefined);
    try {
      await this.flushTallies();
      await removeWorkerReport(this.redis, this.o.settings.workerId);
    } catch (err) {
      this.o.logger.warn({ err }, 'model releases: closing report not removed');
    }
    this.redis.disconnect();
  }

  private follow(): void {
    const o = this.o;
    this.subscriber = this.redis.duplicate();
    this.subscriber.on('error', () => undefined);
    this.subscriber.on('message', (_channel: string, raw: string) => {
      const r = releaseSchema.safeParse(safeJson(raw));
      if (r.success) this.schedule(r.data);
    });
    this.subscriber.subscribe(RELEASE_CHANNEL).catch((err: unknown) => o.logger.warn({ err }, 'model releases: subscribe failed; polling only'));
    this.timers.push(
      setInterval(() => void this.poll().catch((err: unknown) => o.logger.debug({ err }, 'model releases: poll failed')), o.pollMs ?? 3000).unref(),
      setInterval(() => void this.report().catch(() => undefined), o.reportMs ?? 5000).unref(),
      setInterval(() => void this.flushTallies().catch(() => undefined), 2000).unref(),
    );
    void this.report().catch(() => undefined);
  }

  private async poll(): Promise<void> {
    for (const name of this.entries.keys()) {
      const release = await readRelease(this.redis, name);
      if (release) this.schedule(release);
    }
    await this.applying;
  }

  private schedule(release: Release): void {
    const entry = this.entries.get(release.model);
    if (!entry || this.closed) return;
    this.applying = this.applying
      .then(() => (release.seq > entry.seq ? this.apply(entry, release) : undefined))
      .catch((err: unknown) => this.o.logger.error({ err, release }, 'model release not applied'));
  }

  private async apply(entry: Entry<T>, release: Release): Promise<void> {
    const o = this.o;
    const before = entry.current;
    const log = o.logger.child({ model: entry.name, release: release.seq, live: release.live, shadow: release.shadow ?? null });
    let refused: string | undefined;
    let next: CurrentModels<T> = before;
    const loaded: ServedVersion<T>[] = [];
    try {
      const live = await this.version(entry, release.live, before.live, loaded);
      const shadow = release.shadow === undefined || release.shadow === release.live ? undefined : await this.version(entry, release.shadow, live, loaded);
      next = { live, ...(shadow ? { shadow } : {}) };
    } catch (err) {
      refused = err instanceof Refusal ? err.message : `${(err as Error).name}: ${(err as Error).message}`;
    }
    entry.seq = release.seq;
    if (refused !== undefined) {
      entry.refused = refused;
      log.error({ reason: refused }, `model release ${release.seq} refused: ${refused}; still serving ${entry.name}@${before.live.version}`);
      // Versions loaded for this release went into no batch: they go again at once.
      for (const v of loaded) await o.inference.unload(v.model.key);
      await this.report();
      return;
    }
    delete entry.refused;
    const switched = next.live.version !== before.live.version || next.shadow?.version !== before.shadow?.version;
    if (switched) {
      entry.current = next;
      this.generation++;
      if (before.shadow && before.shadow.version !== next.shadow?.version) await this.flushTallies();
      o.metrics.setModelInfo({ model: entry.name, version: next.live.version, engine: next.live.model.engine });
      log.info({ from: before.live.version, to: next.live.version, shadowFrom: before.shadow?.version ?? null, shadowTo: next.shadow?.version ?? null }, `serving ${entry.name}@${next.live.version}${next.shadow ? ` (shadow ${next.shadow.version})` : ''}`);
      const keep = [next.live, next.shadow].flatMap((v) => (v ? [v.model.key] : []));
      await this.retire(entry, keep, [before.live, before.shadow].flatMap((v) => (v ? [v] : [])));
    }
    await this.report();
  }

  /** `version` of `entry`'s model, loaded and warm: the one serving (live or shadow) when it is that, else loaded from the registry. */
  private async version(entry: Entry<T>, version: string, compareTo: ServedVersion<T>, loaded: ServedVersion<T>[]): Promise<ServedVersion<T>> {
    const c = entry.current;
    if (c.live.version === version) return c.live;
    if (c.shadow?.version === version) return c.shadow;
    const dir = join(entry.root, entry.name, version);
    if (!existsSync(join(dir, 'manifest.json'))) throw new Refusal(`no model folder ${dir}`);
    const model = await this.o.inference.load(dir);
    if (model.manifest.name !== entry.name || model.manifest.version !== version) {
      await this.o.inference.unload(model.key);
      throw new Refusal(`${dir} holds ${model.key}, not ${entry.name}@${version}`);
    }
    let view: T;
    try {
      view = this.o.view(model);
    } catch (err) {
      await this.o.inference.unload(model.key);
      throw new Refusal(`${model.key} cannot be served by a ${this.o.kind} worker: ${(err as Error).message}`);
    }
    const why = this.o.incompatible(compareTo.view, view);
    if (why !== undefined) {
      await this.o.inference.unload(model.key);
      throw new Refusal(`${model.key} cannot replace ${entry.name}@${compareTo.version} in place: ${why}`);
    }
    const served = { version, model, view };
    loaded.push(served);
    return served;
  }

  /** Unloads `versions` not in `keep` once every batch that may use them (started before now) has finished. */
  private async retire(entry: Entry<T>, keep: string[], versions: ServedVersion<T>[]): Promise<void> {
    const gone = versions.filter((v) => !keep.includes(v.model.key));
    if (gone.length === 0) return;
    const upTo = this.generation;
    const older = () => [...this.inflight.keys()].some((g) => g < upTo);
    while (older() && !this.closed) await new Promise<void>((r) => this.generationWaiters.push(r));
    if (this.closed) return;
    for (const v of gone) {
      await this.o.inference.unload(v.model.key);
      this.o.logger.info({ model: entry.name, version: v.version }, `${v.model.key} unloaded`);
    }
  }

  private async report(): Promise<void> {
    if (this.closed) return;
    const models: WorkerModels['models'] = {};
    for (const e of this.entries.values()) {
      models[e.name] = {
        live: e.current.live.version,
        engine: e.current.live.model.engine,
        ...(e.current.shadow ? { shadow: e.current.shadow.version } : {}),
        seq: e.seq,
        ...(e.refused === undefined ? {} : { refused: e.refused }),
      };
    }
    await reportWorkerModels(this.redis, { workerId: this.o.settings.workerId, kind: this.o.kind, models, at: Date.now() });
  }

  private async flushTallies(): Promise<void> {
    const pending = [...this.tallies.values()];
    this.tallies.clear();
    for (const t of pending) await addShadowCounts(this.redis, t.name, t.candidate, t.counts);
  }
}

function safeJson(raw: string): unknown {
  try {
    return JSON.parse(raw);
  } catch {
    return undefined;
  }
}
