/**
 * Certificates for the local stack's TLS listeners (Kafka SSL, Redis tls-port): a private CA, a
 * server certificate for 127.0.0.1 / localhost and a client certificate (mutual TLS), made with
 * the `openssl` CLI. Node's crypto cannot issue X.509 certificates and a dependency for a test
 * fixture is not worth it; openssl is on every box that has redis-server.
 *
 * Generated once per state dir and kept, so a client configured with the CA file keeps working
 * across `stack:down` + `stack:up`; regenerated only when a file is missing or the server or
 * client certificate expires within a day. EC P-256 keys: generated in milliseconds, accepted by
 * Java (Kafka's PEM key store tries RSA, DSA and EC key factories), OpenSSL (Redis) and Node.
 * Keys are unencrypted PKCS#8 ("BEGIN PRIVATE KEY"): the only form Kafka's PEM key store reads
 * without a key password, and a dev stack's files are protected by their 0600 mode only.
 *
 * Layout under `<stateDir>/tls/`: ca.pem, ca.key, server.pem, server.key, client.pem,
 * client.key, openssl.cnf.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, mkdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { StackError, exists, findExecutable } from './processes.js';

const execFileAsync = promisify(execFile);

/** Where a state dir's certificates are; every file is PEM. */
export interface TlsPaths {
  dir: string;
  /** The private CA's certificate: what clients trust (KAFKA_TLS_CA_FILE, REDIS_TLS_CA_FILE). */
  caFile: string;
  /** The CA's key; only used to sign the two certificates below. */
  caKeyFile: string;
  /** Server certificate, SAN IP:127.0.0.1 and DNS:localhost, signed by the CA. */
  serverCertFile: string;
  serverKeyFile: string;
  /** Client certificate (CN fleet-worker, extendedKeyUsage clientAuth), signed by the CA. */
  clientCertFile: string;
  clientKeyFile: string;
}

export function tlsPaths(stateDir: string): TlsPaths {
  const dir = join(stateDir, 'tls');
  return {
    dir,
    caFile: join(dir, 'ca.pem'),
    caKeyFile: join(dir, 'ca.key'),
    serverCertFile: join(dir, 'server.pem'),
    serverKeyFile: join(dir, 'server.key'),
    clientCertFile: join(dir, 'client.pem'),
    clientKeyFile: join(dir, 'client.key'),
  };
}

/** Days the CA is valid; the leaf certificates get less, as browsers and linters expect. */
const CA_DAYS = 3650;
const LEAF_DAYS = 825;

/**
 * A self-contained openssl config: the system openssl.cnf differs between distributions (and its
 * default `v3_ca` section would clash with `-addext`), so every extension is spelled out here.
 */
const OPENSSL_CNF = [
  '# Written by deploy/local/tls.ts; used only to issue the local stack certificates.',
  '[req]',
  'distinguished_name = dn',
  'prompt = no',
  '[dn]',
  '[ca]',
  'basicConstraints = critical, CA:TRUE, pathlen:0',
  'keyUsage = critical, keyCertSign, cRLSign',
  'subjectKeyIdentifier = hash',
  '[server]',
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = serverAuth',
  'subjectAltName = IP:127.0.0.1, DNS:localhost',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
  '[client]',
  'basicConstraints = critical, CA:FALSE',
  'keyUsage = critical, digitalSignature',
  'extendedKeyUsage = clientAuth',
  'subjectKeyIdentifier = hash',
  'authorityKeyIdentifier = keyid',
  '',
].join('\n');

/** The openssl binary, or a StackError saying TLS needs it. */
export async function findOpenssl(): Promise<string> {
  const openssl = await findExecutable('openssl');
  if (!openssl) throw new StackError('openssl not found on PATH: the TLS option of the local stack issues its certificates with it (Debian: apt-get install openssl)');
  return openssl;
}

async function run(openssl: string, args: string[], cwd: string): Promise<void> {
  try {
    await execFileAsync(openssl, args, { cwd, timeout: 30_000 });
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new StackError(`openssl ${args[0] ?? ''} failed: ${(e.stderr ?? '').trim() || e.message}`);
  }
}

/** True when `cert` is still valid a day from now (`openssl x509 -checkend` exits 1 otherwise). */
async function validForADay(openssl: string, cert: string): Promise<boolean> {
  try {
    await execFileAsync(openssl, ['x509', '-checkend', '86400', '-noout', '-in', cert], { timeout: 30_000 });
    return true;
  } catch {
    return false;
  }
}

/** A random positive serial (20 bytes at most per RFC 5280; the top bit cleared keeps it positive). */
function serial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return `0x${bytes.toString('hex')}`;
}

/** Issues the CA and both leaf certificates into `dir` (a fresh, empty directory). */
async function issue(openssl: string, dir: string): Promise<void> {
  await writeFile(join(dir, 'openssl.cnf'), OPENSSL_CNF);
  const key = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-noenc'];
  await run(
    openssl,
    ['req', '-x509', '-config', 'openssl.cnf', ...key, '-keyout', 'ca.key', '-out', 'ca.pem', '-days', String(CA_DAYS), '-subj', '/CN=fleet local stack CA', '-extensions', 'ca', '-set_serial', serial()],
    dir,
  );
  for (const [name, cn] of [
    ['server', 'localhost'],
    ['client', 'fleet-worker'],
  ] as const) {
    await run(openssl, ['req', '-new', '-config', 'openssl.cnf', ...key, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`], dir);
    await run(
      openssl,
      [
        'x509',
        '-req',
        '-in',
        `${name}.csr`,
        '-CA',
        'ca.pem',
        '-CAkey',
        'ca.key',
        '-set_serial',
        serial(),
        '-days',
        String(LEAF_DAYS),
        '-sha256',
        '-extfile',
        'openssl.cnf',
        '-extensions',
        name,
        '-out',
        `${name}.pem`,
      ],
      dir,
    );
    await rm(join(dir, `${name}.csr`));
  }
  for (const k of ['ca.key', 'server.key', 'client.key']) await chmod(join(dir, k), 0o600);
}

/**
 * The state dir's certificates, issued now when missing or about to expire (`issued`: a server
 * already running still has the old ones loaded). Call it inside the
 * state dir lock (stackUp does): two issuers at once would each replace the other's CA. The new
 * set is written to a temp dir and renamed into place, so a failure half-way leaves no mix of old
 * and new files.
 */
export async function ensureTlsMaterial(stateDir: string, log: (line: string) => void): Promise<{ paths: TlsPaths; issued: boolean }> {
  const paths = tlsPaths(stateDir);
  const openssl = await findOpenssl();
  const files = [paths.caFile, paths.caKeyFile, paths.serverCertFile, paths.serverKeyFile, paths.clientCertFile, paths.clientKeyFile];
  const present = (await Promise.all(files.map((f) => exists(f)))).every(Boolean);
  if (present && (await validForADay(openssl, paths.serverCertFile)) && (await validForADay(openssl, paths.clientCertFile))) {
    return { paths, issued: false };
  }

  log(`tls: ${present ? 'certificates expire soon; issuing new ones' : 'issuing a private CA and server/client certificates'} in ${paths.dir}`);
  await mkdir(stateDir, { recursive: true });
  const tmp = `${paths.dir}.${process.pid}.tmp`;
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { mode: 0o700 });
  try {
    await issue(openssl, tmp);
    await rm(paths.dir, { recursive: true, force: true });
    await rename(tmp, paths.dir);
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
  return { paths, issued: true };
}
