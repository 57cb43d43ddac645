/**
 * The one way a test waits: poll a condition with a deadline, and fail with an error that names
 * what was awaited. No sleeps as synchronization. (Same implementation the local stack uses for
 * "broker answering", so the semantics are identical everywhere.)
 *
 * @example
 *   const got = await waitFor(() => received.length >= 3 && received, { what: '3 messages on quality.defects.v1', timeoutMs: 15_000 });
 */
export { AbortWait, WaitTimeoutError, waitFor, type WaitForOptions } from '../../deploy/local/processes.js';
