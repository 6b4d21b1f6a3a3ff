/**
 * Certificates for the bench, made by the `openssl` CLI: one PKI per key
 * type, so the RSA scenario is RSA end to end (CA signature, server and client
 * keys) and the ECDSA one is P-256 end to end. Every proxy gets the same files.
 *
 * Not test/harness/pki.ts: that one always makes an EC root, and a handshake
 * figure "RSA 2048" should not include an ECDSA verification of the chain.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export type KeyType = 'ec' | 'rsa'

/** One key type's files; `clientSpiffeId` is the client's URI SAN. */
export interface BenchPki {
  readonly keyType: KeyType
  readonly caCert: string
  /** The server leaf alone: it chains directly to the CA, which clients are not told to verify. */
  readonly serverCert: string
  readonly serverKey: string
  /** Server certificate and key in one file (HAProxy's `crt`). */
  readonly serverPem: string
  readonly clientCert: string
  readonly clientKey: string
  readonly clientSpiffeId: string
}

const openssl = (args: readonly string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })

function newKey(path: string, keyType: KeyType, cwd: string): void {
  const args = keyType === 'rsa' ? ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'] : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
  openssl(['genpkey', ...args, '-out', path], cwd)
  chmodSync(path, 0o600)
}

function leaf(dir: string, name: string, keyType: KeyType, ca: { cert: string; key: string }, ext: string): { cert: string; key: string } {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.crt`)
  const csr = join(dir, `${name}.csr`)
  const extFile = join(dir, `${name}.ext`)
  newKey(key, keyType, dir)
  writeFileSync(extFile, `basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature${keyType === 'rsa' ? ',keyEncipherment' : ''}\n${ext}\n`)
  openssl(['req', '-new', '-key', key, '-subj', `/CN=${name}/O=Portcullis Bench`, '-out', csr], dir)
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-CAcreateserial', '-days', '30', '-sha256', '-extfile', extFile, '-out', cert], dir)
  return { cert, key }
}

/** Makes a CA, a server certificate for 127.0.0.1/localhost and a client certificate in `dir`. */
export function makeBenchPki(dir: string, keyType: KeyType): BenchPki {
  const caKey = join(dir, `ca-${keyType}.key`)
  const caCert = join(dir, `ca-${keyType}.crt`)
  newKey(caKey, keyType, dir)
  openssl(['req', '-x509', '-new', '-key', caKey, '-subj', `/CN=bench-ca-${keyType}/O=Portcullis Bench`, '-days', '30', '-sha256',
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', caCert], dir)
  const ca = { cert: caCert, key: caKey }
  const server = leaf(dir, `server-${keyType}`, keyType, ca, 'extendedKeyUsage=serverAuth\nsubjectAltName=DNS:localhost,IP:127.0.0.1')
  const clientSpiffeId = `spiffe://bench.portcullis/client-${keyType}`
  const client = leaf(dir, `client-${keyType}`, keyType, ca, `extendedKeyUsage=clientAuth\nsubjectAltName=URI:${clientSpiffeId}`)
  const serverPem = join(dir, `server-${keyType}.pem`)
  writeFileSync(serverPem, readFileSync(server.cert, 'utf8') + readFileSync(server.key, 'utf8'), { mode: 0o600 })
  return { keyType, caCert, serverCert: server.cert, serverKey: server.key, serverPem, clientCert: client.cert, clientKey: client.key, clientSpiffeId }
}
