/**
 * Reading a worker's ops endpoints the way Prometheus and a kubelet would, for tests, the fault
 * suite and the soak.
 */

/** The status `path` of the ops server on `port` answered with, or undefined when it did not answer. */
async function opsStatus(port: number, path: string): Promise<number | undefined> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}${path}`, { signal: AbortSignal.timeout(2000) });
    await r.arrayBuffer();
    return r.status;
  } catch {
    return undefined;
  }
}

/** `/readyz` answered 200 (false when it answered otherwise or not at all). */
export async function readyzOk(port: number): Promise<boolean> {
  return (await opsStatus(port, '/readyz')) === 200;
}

/** `/healthz` answered at all: the worker's ops server is up, so its entry point has installed its signal handlers. */
export async function healthzAnswers(port: number): Promise<boolean> {
  return (await opsStatus(port, '/healthz')) !== undefined;
}

/** The value of the first sample line `name{labels} value` in Prometheus text where every given label matches. */
export function metricSample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    if (!Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`))) continue;
    return Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return undefined;
}
