/**
 * Certificates for the TLS tests, made with the system's `openssl` (Debian's openssl package) in a fresh temp dir
 * that is removed at teardown. EC P-256 keys, valid for two days, every file mode 0600:
 *
 * - `ca`: the CA that signs `server`, `server2` and `other` (what `--tls-ca` / a client's `ca` trusts);
 * - `server`, `server2`: two certificates for `localhost` and IP 127.0.0.1 with different keys (a reload swaps one for
 *   the other, and the key of one does not match the certificate of the other);
 * - `other`: signed by `ca` for `other.example` only (a name check against localhost or 127.0.0.1 fails);
 * - `clientCa` and `client`: a second CA and a client certificate (extendedKeyUsage clientAuth) it signed;
 * - `selfSigned`: for `localhost` and 127.0.0.1 but signed by nobody `ca` knows (the chain check fails, the name would pass).
 */
import type { Test } from 'tap'
import { execFileSync } from 'node:child_process'
import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { X509Certificate } from 'node:crypto'

/** A certificate and its private key: paths and PEM contents. */
export interface CertPair {
  readonly certFile: string
  readonly keyFile: string
  readonly cert: Buffer
  readonly key: Buffer
  /** SHA-256 fingerprint as Node's `getPeerCertificate().fingerprint256` prints it (`AB:CD:...`). */
  readonly fingerprint256: string
}

export interface TestCerts {
  readonly dir: string
  readonly ca: CertPair
  readonly server: CertPair
  readonly server2: CertPair
  readonly other: CertPair
  readonly clientCa: CertPair
  readonly client: CertPair
  readonly selfSigned: CertPair
}

function openssl (dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'], timeout: 20_000 })
}

function pair (dir: string, name: string): CertPair {
  const certFile = join(dir, `${name}.crt`)
  const keyFile = join(dir, `${name}.key`)
  for (const f of [certFile, keyFile]) chmodSync(f, 0o600)
  const cert = readFileSync(certFile)
  return Object.freeze({ certFile, keyFile, cert, key: readFileSync(keyFile), fingerprint256: new X509Certificate(cert).fingerprint256 })
}

const KEY = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']

/** A self-signed CA certificate. */
function makeCa (dir: string, name: string, cn: string): CertPair {
  openssl(dir, [
    'req', '-x509', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.crt`, '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
  ])
  return pair(dir, name)
}

/** A leaf certificate signed by `ca`, with the extensions in `ext` (one per line, openssl config syntax). */
function makeLeaf (dir: string, name: string, cn: string, ca: CertPair, ext: string[]): CertPair {
  const extFile = join(dir, `${name}.ext`)
  writeFileSync(extFile, ext.join('\n') + '\n', { mode: 0o600 })
  openssl(dir, ['req', '-new', ...KEY, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${cn}`])
  openssl(dir, [
    'x509', '-req', '-in', `${name}.csr`, '-CA', ca.certFile, '-CAkey', ca.keyFile, '-CAcreateserial',
    '-days', '2', '-sha256', '-extfile', extFile, '-out', `${name}.crt`,
  ])
  return pair(dir, name)
}

const SERVER_EXT = ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=serverAuth']

/** Makes every certificate in a new temp dir (mode 0700, files 0600), removed at `t`'s teardown. */
export function makeCerts (t: Test): TestCerts {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-certs-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  const ca = makeCa(dir, 'ca', 'tcptee test CA')
  const server = makeLeaf(dir, 'server', 'localhost', ca, [...SERVER_EXT, 'subjectAltName=DNS:localhost,IP:127.0.0.1'])
  const server2 = makeLeaf(dir, 'server2', 'localhost', ca, [...SERVER_EXT, 'subjectAltName=DNS:localhost,IP:127.0.0.1'])
  const other = makeLeaf(dir, 'other', 'other.example', ca, [...SERVER_EXT, 'subjectAltName=DNS:other.example'])
  const clientCa = makeCa(dir, 'client-ca', 'tcptee test client CA')
  const client = makeLeaf(dir, 'client', 'tcptee test client', clientCa,
    ['basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature', 'extendedKeyUsage=clientAuth'])
  openssl(dir, [
    'req', '-x509', ...KEY, '-keyout', 'self.key', '-out', 'self.crt', '-days', '2', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-addext', 'basicConstraints=critical,CA:FALSE',
  ])
  const selfSigned = pair(dir, 'self')
  // The CSRs, extension files and serial files too: nothing in the dir is readable by others.
  for (const f of readdirSync(dir)) chmodSync(join(dir, f), 0o600)
  return Object.freeze({ dir, ca, server, server2, other, clientCa, client, selfSigned })
}
