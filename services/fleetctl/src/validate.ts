/**
 * Checks a model version folder before anything serves it: the manifest parses, the files the
 * manifest and `model.json` name are there, the folder sits at `<registry>/<name>/<version>`,
 * and the model loads in an engine (the inference pool workers use, one thread) and turns one
 * batch of zeros into the manifest's output shape.
 */
import { access, readFile } from 'node:fs/promises';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import pino from 'pino';
import { readModelManifest, type ModelManifest } from '../../../shared/src/inference/manifest.js';
import { createInferencePool } from '../../../shared/src/inference/pool.js';
import { RefusalError } from './errors.js';

export interface ValidationResult {
  manifest: ModelManifest;
  dir: string;
  files: string[];
  engine: string;
  /** Output length of one zero item, as the engine returned it. */
  outputSize: number;
  seconds: number;
}

const exists = (p: string) =>
  access(p).then(
    () => true,
    () => false,
  );

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** Reads `model.json` and lists the weight files its `weightsManifest` names (relative to the folder). */
export async function weightFiles(dir: string): Promise<string[]> {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(join(dir, 'model.json'), 'utf8'));
  } catch (err) {
    throw new RefusalError(`${join(dir, 'model.json')}: ${(err as Error).message}`, { check: 'files' });
  }
  const groups = (json as { weightsManifest?: unknown }).weightsManifest;
  if (!Array.isArray(groups)) throw new RefusalError(`${join(dir, 'model.json')}: no weightsManifest`, { check: 'files' });
  const out: string[] = [];
  for (const g of groups as { paths?: unknown }[]) {
    if (!Array.isArray(g.paths)) throw new RefusalError(`${join(dir, 'model.json')}: a weightsManifest group has no paths`, { check: 'files' });
    for (const p of g.paths) out.push(String(p));
  }
  return out;
}

export async function validateVersionDir(dirArg: string, registry: string): Promise<ValidationResult> {
  const started = performance.now();
  const dir = resolve(dirArg);
  if (!(await exists(dir))) throw new RefusalError(`${dir}: no such folder`, { check: 'files' });
  let manifest: ModelManifest;
  try {
    manifest = await readModelManifest(dir);
  } catch (err) {
    throw new RefusalError(`manifest: ${(err as Error).message}`, { check: 'manifest' });
  }
  const expected = join(resolve(registry), manifest.name, manifest.version);
  if (dir !== expected) {
    const where = relative(resolve(registry), dir);
    const inRegistry = !where.startsWith('..') && !where.startsWith(sep);
    throw new RefusalError(
      inRegistry
        ? `folder ${where} does not match the manifest (${manifest.name}/${manifest.version})`
        : `folder ${dir} is not in the registry ${resolve(registry)} (expected ${expected}; set MODEL_REGISTRY)`,
      { check: 'path', expected, got: dir, folder: `${basename(dirname(dir))}/${basename(dir)}` },
    );
  }
  const weights = await weightFiles(dir);
  const files = ['manifest.json', 'model.json', ...weights];
  for (const f of weights) {
    const p = resolve(dir, f);
    if (relative(dir, p).startsWith('..')) throw new RefusalError(`model.json names weight file ${f} outside the folder`, { check: 'files' });
    if (!(await exists(p))) throw new RefusalError(`missing weights file ${f} (named in model.json)`, { check: 'files', missing: f });
  }
  if (await exists(join(dir, 'model.onnx'))) files.push('model.onnx');

  const pool = createInferencePool({ models: [dir], threads: 1, log: pino({ level: 'silent' }) });
  try {
    let engine: string;
    try {
      engine = (await pool.start()).engine;
    } catch (err) {
      throw new RefusalError(`model does not load: ${(err as Error).message}`, { check: 'engine' });
    }
    const out = await pool.run(`${manifest.name}@${manifest.version}`, new Float32Array(product(manifest.inputShape)), 1);
    if (out.output.length !== product(manifest.outputShape)) {
      throw new RefusalError(`output shape: one item gave ${out.output.length} values, the manifest's outputShape ${JSON.stringify(manifest.outputShape)} says ${product(manifest.outputShape)}`, {
        check: 'output-shape',
      });
    }
    return { manifest, dir, files, engine, outputSize: out.output.length, seconds: (performance.now() - started) / 1000 };
  } finally {
    await pool.close();
  }
}
