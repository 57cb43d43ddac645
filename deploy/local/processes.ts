/**
 * Process, port and file helpers for the local stack: detached children with pid files, "is this
 * pid still the process we started", port probes, polling with a deadline, and a lock so two
 * `stack:up` runs against one state dir do not race. Linux-first (/proc); elsewhere the identity
 * check degrades to "the pid is alive".
 */
import { spawn } from 'node:child_process';
import { constants as fsConstants } from 'node:fs';
import { access, mkdir, open, readFile, readlink, realpath, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { delimiter, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A failure the user can act on; the CLI prints its message without a stack trace. */
export class StackError extends Error {
  override name = 'StackError';
}

/** Thrown by {@link waitFor} when the deadline passes; `cause` is the check's last error, if any. */
export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

/** Throw this from a {@link waitFor} check to stop waiting at once (the thing waited for cannot happen any more). */
export class AbortWait extends Error {
  override name = 'AbortWait';
}

export interface WaitForOptions {
  /** What is being waited for, e.g. `"broker 127.0.0.1:9092 to answer"`; the timeout error names it. */
  what: string;
  /** Deadline for the whole wait. @defaultValue 10000 */
  timeoutMs?: number;
  /** Pause between two checks. @defaultValue 100 */
  intervalMs?: number;
}

/**
 * Polls `check` until it returns a truthy value (which is returned), with a deadline. A check
 * that throws counts as "not yet" and its error is kept as the timeout error's cause; throwing
 * {@link AbortWait} ends the wait with that error. A check still running at the deadline is not
 * awaited: the wait rejects on time.
 */
export async function waitFor<T>(
  check: () => T | Promise<T>,
  options: WaitForOptions,
): Promise<Exclude<T, false | 0 | '' | null | undefined>> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    try {
      const attempt = Promise.resolve().then(check);
      attempt.catch(() => undefined); // a check that loses the race must not become an unhandled rejection
      const timer = new AbortController();
      let outcome: { value: T } | 'deadline';
      try {
        outcome = await Promise.race([
          attempt.then((value) => ({ value })),
          sleep(remaining, undefined, { signal: timer.signal }).then(
            () => 'deadline' as const,
            () => 'deadline' as const,
          ),
        ]);
      } finally {
        timer.abort(); // the deadline timer must not keep the process alive
      }
      if (outcome === 'deadline') break;
      if (outcome.value) return outcome.value as Exclude<T, false | 0 | '' | null | undefined>;
      lastError = undefined;
    } catch (err) {
      if (err instanceof AbortWait) throw err;
      lastError = err;
    }
    const pause = Math.min(intervalMs, deadline - Date.now());
    if (pause > 0) await sleep(pause);
  }
  const detail = lastError === undefined ? '' : `; last error: ${errorMessage(lastError)}`;
  throw new WaitTimeoutError(`timed out after ${timeoutMs} ms waiting for ${options.what}${detail}`, {
    cause: lastError,
  });
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

/** True while `pid` exists and is not a zombie (a zombie has exited; only its parent has not reaped it yet). */
export async function isAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  try {
    const st = await readFile(`/proc/${pid}/stat`, 'utf8');
    // "pid (comm) S ...": the state letter follows the last ')' (comm may contain parentheses).
    const state = st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return true; // no /proc (not Linux): kill(0) is all we know
  }
}

/**
 * True when `pid` is alive and is the process this stack started in `dir`: children are started
 * with `dir` as their working directory, so /proc/<pid>/cwd tells a reused pid apart.
 */
export async function isOurProcess(pid: number, dir: string): Promise<boolean> {
  if (!(await isAlive(pid))) return false;
  let cwd: string;
  try {
    cwd = await readlink(`/proc/${pid}/cwd`);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ENOENT for /proc itself missing (not Linux): fall back to liveness. EACCES: another user's process.
    return code === 'ENOENT' && !(await exists('/proc/self'));
  }
  try {
    return cwd === (await realpath(dir));
  } catch {
    return false;
  }
}

export async function readPidFile(path: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(path, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

/** The pid recorded in `pidFile` if that process is alive and ours (see {@link isOurProcess}); a stale file is removed. */
export async function runningPid(pidFile: string, dir: string): Promise<number | undefined> {
  const pid = await readPidFile(pidFile);
  if (pid === undefined) return undefined;
  if (await isOurProcess(pid, dir)) return pid;
  await rm(pidFile, { force: true });
  return undefined;
}

export async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Resolves `name` on PATH like a shell would; undefined when absent. */
export async function findExecutable(name: string, envPath = process.env.PATH ?? ''): Promise<string | undefined> {
  for (const dir of envPath.split(delimiter)) {
    if (!dir) continue;
    const candidate = join(dir, name);
    try {
      await access(candidate, fsConstants.X_OK);
      if ((await stat(candidate)).isFile()) return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** True when something already listens on host:port (we cannot bind it). */
export async function portInUse(port: number, host = '127.0.0.1'): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EADDRINUSE') resolve(true);
      else reject(err);
    });
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(false)));
  });
}

/** True when a TCP connection to host:port is accepted within `timeoutMs`. */
export async function tcpAnswers(port: number, host = '127.0.0.1', timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ port, host });
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A free TCP port on 127.0.0.1, found by binding port 0 (for tests that start their own stack). */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port: 0, host }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface SpawnDetachedOptions {
  /** Working directory; also how {@link isOurProcess} recognises the child later. */
  cwd: string;
  /** stdout and stderr are appended here. */
  outputFile: string;
  env?: NodeJS.ProcessEnv;
}

/**
 * Starts a child in its own session (setsid), output to a file, not waited for: it outlives the
 * CLI that started it, and a Ctrl-C in that terminal does not reach it.
 */
export async function spawnDetached(command: string, args: string[], options: SpawnDetachedOptions): Promise<number> {
  const out = await open(options.outputFile, 'a');
  try {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      detached: true,
      stdio: ['ignore', out.fd, out.fd],
    });
    const pid = await new Promise<number>((resolve, reject) => {
      child.once('spawn', () => resolve(child.pid ?? 0));
      child.once('error', reject);
    });
    child.unref();
    return pid;
  } finally {
    await out.close();
  }
}

export interface StopProcessOptions {
  /** For messages, e.g. "kafka broker". */
  name: string;
  /** How long SIGTERM gets before SIGKILL. */
  timeoutMs: number;
  log: (line: string) => void;
}

/** SIGTERM, wait for exit up to the deadline, then SIGKILL as a last resort (and say so). Returns whether SIGKILL was needed. */
export async function stopProcess(pid: number, options: StopProcessOptions): Promise<{ killed: boolean }> {
  if (!signal(pid, 'SIGTERM')) return { killed: false };
  try {
    await waitFor(async () => !(await isAlive(pid)), {
      what: `${options.name} (pid ${pid}) to exit after SIGTERM`,
      timeoutMs: options.timeoutMs,
      intervalMs: 100,
    });
    return { killed: false };
  } catch (err) {
    if (!(err instanceof WaitTimeoutError)) throw err;
  }
  options.log(`${options.name} (pid ${pid}) did not exit within ${options.timeoutMs} ms of SIGTERM; sending SIGKILL`);
  signal(pid, 'SIGKILL');
  await waitFor(async () => !(await isAlive(pid)), { what: `${options.name} (pid ${pid}) to exit after SIGKILL`, timeoutMs: 10_000 });
  return { killed: true };
}

/**
 * Stops the process whose pid file lies in `dir` if it is ours and alive (see runningPid), then
 * removes the pid file. What the broker and redis-server stops have in common.
 */
export async function stopRecordedProcess(
  pidFile: string,
  dir: string,
  options: StopProcessOptions,
): Promise<{ pid?: number; killed: boolean }> {
  const pid = await runningPid(pidFile, dir);
  if (pid === undefined) return { killed: false };
  const { killed } = await stopProcess(pid, options);
  await rm(pidFile, { force: true });
  return { pid, killed };
}

function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw err;
  }
}

/** The last `lines` lines of a text file ('' when it does not exist). */
export async function tailFile(path: string, lines = 20): Promise<string> {
  try {
    const text = await readFile(path, 'utf8');
    return text.split('\n').filter((l, i, all) => l.length > 0 || i < all.length - 1).slice(-lines).join('\n');
  } catch {
    return '';
  }
}

/**
 * Runs `fn` holding an exclusive lock file (O_EXCL) in `dir`, so two `stack:up`/`stack:down` on the
 * same state dir do not both start a broker. A lock left by a dead process is taken over.
 */
export async function withLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 180_000): Promise<T> {
  await mkdir(dir, { recursive: true });
  const lockFile = join(dir, 'stack.lock');
  await waitFor(
    async () => {
      try {
        const handle = await open(lockFile, 'wx');
        await handle.writeFile(String(process.pid));
        await handle.close();
        return true;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw new AbortWait(errorMessage(err), { cause: err });
      }
      const holder = await readPidFile(lockFile);
      // A lock without a pid is being written right now, unless it is old (its writer died).
      const stale = holder === undefined ? await olderThan(lockFile, 5_000) : !(await isAlive(holder));
      if (stale) await rm(lockFile, { force: true }); // taken over on the next round
      return false;
    },
    { what: `the stack lock ${lockFile} (another stack:up/down is running)`, timeoutMs, intervalMs: 200 },
  );
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

async function olderThan(path: string, ms: number): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > ms;
  } catch {
    return true;
  }
}

/** Writes via a temporary file and rename, so a reader never sees half a file. */
export async function writeFileAtomic(path: string, content: string): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, content);
  await rename(tmp, path);
}
