import { connect, type ConnectionOptions } from 'node:tls';
import { isIP } from 'node:net';

/** Certificate verification failures: permanent, unlike a broker that is not up yet. */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_ISSUER_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/**
 * One TLS handshake with `broker` (`host:port`) using the worker's TLS options, to tell a
 * certificate the worker does not trust (returned as an Error) from anything else (undefined:
 * connected, or a failure kafkajs's own retries should handle). kafkajs treats a failed
 * certificate check as a transient connection error and retries it for about ten seconds before
 * the worker can say what is wrong.
 */
export async function untrustedBrokerCertificate(broker: string, options: ConnectionOptions | true, timeoutMs = 3000): Promise<Error | undefined> {
  const i = broker.lastIndexOf(':');
  const host = broker.slice(0, i).replace(/^\[|\]$/g, '');
  const port = Number(broker.slice(i + 1));
  // As kafkajs does: no SNI for an IP address (Node refuses an IP as servername).
  const tlsOptions: ConnectionOptions = { ...(options === true ? {} : options), host, port, ...(isIP(host) ? {} : { servername: host }) };
  return new Promise((resolve) => {
    const socket = connect(tlsOptions);
    const done = (result: Error | undefined) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.once('secureConnect', () => done(undefined));
    socket.once('error', (err: NodeJS.ErrnoException) => done(err.code !== undefined && CERTIFICATE_ERRORS.has(err.code) ? err : undefined));
  });
}
