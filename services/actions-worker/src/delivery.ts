import type { ActionFailureReason } from '../../../shared/src/contracts/action.js';
import type { ActionRoute } from './config.js';

/** What one HTTP attempt came to. */
export type DeliveryOutcome =
  | { ok: true; status: number }
  | {
      ok: false;
      /** No retry can help: the endpoint refused the event (4xx other than 408 and 429). */
      permanent: boolean;
      reason: ActionFailureReason;
      status?: number;
      message: string;
    };

/**
 * 2xx is done. A 4xx says the request itself is wrong (bad payload, bad credentials): sending it
 * again cannot help, except 408 (the server timed out waiting) and 429 (rate limited), which are
 * about timing. 5xx, timeouts and connection errors are the endpoint's trouble: retry.
 */
export function isPermanentStatus(status: number): boolean {
  return status >= 400 && status < 500 && status !== 408 && status !== 429;
}

/**
 * POSTs the event JSON to the route once. Never throws: every failure comes back as an outcome.
 * The timeout covers the whole exchange, the answer body included (read and dropped so the
 * keep-alive connection can be reused).
 */
export async function deliver(route: ActionRoute, eventId: string, body: string, fetchImpl: typeof fetch = fetch): Promise<DeliveryOutcome> {
  const headers: Record<string, string> = { 'content-type': 'application/json', 'idempotency-key': eventId };
  if (route.authHeader !== undefined) headers.authorization = route.authHeader;
  try {
    const res = await fetchImpl(route.url, { method: 'POST', headers, body, signal: AbortSignal.timeout(route.timeoutMs), redirect: 'error' });
    await res.arrayBuffer();
    if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status };
    return { ok: false, permanent: isPermanentStatus(res.status), reason: 'http-status', status: res.status, message: `HTTP ${res.status} from route ${route.name}` };
  } catch (err) {
    const e = err as Error & { cause?: { code?: string; message?: string } };
    if (e.name === 'TimeoutError' || e.name === 'AbortError') {
      return { ok: false, permanent: false, reason: 'timeout', message: `no answer from route ${route.name} within ${route.timeoutMs} ms` };
    }
    // undici puts the socket error (ECONNREFUSED, ECONNRESET, ENOTFOUND) in `cause`.
    const detail = e.cause?.code ?? e.cause?.message ?? e.message;
    return { ok: false, permanent: false, reason: 'connection', message: `connection to route ${route.name} failed: ${detail}` };
  }
}
