import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate, createPrivateKey } from 'node:crypto'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, unlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import tls from 'node:tls'
import { TestPki } from '../../test/harness/pki.js'
import { FixedClock } from '../shared/clock.js'
import { ensureDevPki } from './dev-pki.js'
import type { DevPki } from './dev-pki.js'

const DAY = 86_400_000
const roots: string[] = []
after(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true })
})

function tempRoot(): string {
  const r = mkdtempSync(join(tmpdir(), 'portcullis-devpki-'))
  roots.push(r)
  return r
}

function openssl(args: readonly string[]): string {
  return execFileSync('openssl', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
}

/** `openssl verify` exit status and output; strict X.509 checks and the purpose (EKU) the leaf is for. */
function verify(pki: DevPki, leaf: string, purpose: 'sslserver' | 'sslclient', atMs?: number): string {
  const at = atMs === undefined ? [] : ['-attime', String(Math.floor(atMs / 1000))]
  return openssl(['verify', '-x509_strict', '-purpose', purpose, ...at, '-CAfile', pki.ca.certPath, leaf]).trim()
}

function text(path: string): string {
  return openssl(['x509', '-in', path, '-noout', '-text'])
}

function mode(path: string): number {
  return statSync(path).mode & 0o777
}

describe('ensureDevPki', { timeout: 60_000 }, () => {
  const clock = new FixedClock(Date.now())
  const dataDir = join(tempRoot(), 'nested', 'data')
  let first: DevPki

  test('creates a CA, server and client certificate that openssl verifies for their purpose', async () => {
    first = await ensureDevPki(dataDir, { clock })
    assert.equal(first.ca.status, 'created')
    assert.equal(first.server.status, 'created')
    assert.equal(first.client.status, 'created')
    assert.equal(verify(first, first.server.certPath, 'sslserver'), `${first.server.certPath}: OK`)
    assert.equal(verify(first, first.client.certPath, 'sslclient'), `${first.client.certPath}: OK`)
    // Each leaf has one EKU: the server cert is not a client cert and vice versa.
    assert.throws(() => verify(first, first.server.certPath, 'sslclient'))
    assert.throws(() => verify(first, first.client.certPath, 'sslserver'))
  })

  test('the root is a critical CA:TRUE with keyCertSign and cRLSign, P-256, ten years', () => {
    const t = text(first.ca.certPath)
    assert.match(t, /X509v3 Basic Constraints: critical\s+CA:TRUE\n/)
    assert.match(t, /X509v3 Key Usage: critical\s+Certificate Sign, CRL Sign\n/)
    assert.match(t, /X509v3 Subject Key Identifier:/)
    assert.match(t, /ASN1 OID: prime256v1/)
    assert.match(t, /Subject: CN = Portcullis Development CA, OU = dev-[0-9a-f]{8}, O = Portcullis Dev\n/)
    const cert = new X509Certificate(readFileSync(first.ca.certPath))
    const lifetime = Date.parse(cert.validTo) - Date.parse(cert.validFrom)
    assert.ok(Math.abs(lifetime - 3650 * DAY) < 10 * 60_000, `CA lifetime ${lifetime}`)
  })

  test('the server leaf is CA:FALSE for serverAuth with localhost, 127.0.0.1 and ::1, 90 days, AKI = CA SKI', () => {
    const t = text(first.server.certPath)
    assert.match(t, /X509v3 Basic Constraints: critical\s+CA:FALSE\n/)
    assert.match(t, /X509v3 Key Usage: critical\s+Digital Signature\n/)
    assert.match(t, /X509v3 Extended Key Usage: \s+TLS Web Server Authentication\n/)
    assert.match(t, /DNS:localhost, IP Address:127\.0\.0\.1, IP Address:0:0:0:0:0:0:0:1\n/)
    const caSki = /Subject Key Identifier: \s+([0-9A-F:]+)/.exec(text(first.ca.certPath))?.[1]
    assert.ok(caSki)
    assert.match(t, new RegExp(`Authority Key Identifier: \\s+(keyid:)?${caSki}\\n`))
    const cert = new X509Certificate(readFileSync(first.server.certPath))
    assert.ok(Math.abs(Date.parse(cert.validTo) - (clock.now() + 90 * DAY)) < 2000)
  })

  test('the client leaf is CN=dev-client,O=Portcullis Dev for clientAuth with the SPIFFE id', () => {
    const t = text(first.client.certPath)
    assert.match(t, /X509v3 Basic Constraints: critical\s+CA:FALSE\n/)
    assert.match(t, /X509v3 Extended Key Usage: \s+TLS Web Client Authentication\n/)
    assert.match(t, /X509v3 Subject Alternative Name: \s+URI:spiffe:\/\/portcullis\.dev\/client\/dev\n/)
    assert.match(t, /Subject: CN = dev-client, O = Portcullis Dev\n/)
    assert.equal(first.clientSpiffeId, 'spiffe://portcullis.dev/client/dev')
  })

  test('serials are random, positive and 128 bits', () => {
    const serials = [first.ca, first.server, first.client].map((c) => new X509Certificate(c.certPem).serialNumber)
    assert.equal(new Set(serials).size, 3)
    for (const s of serials) assert.match(s, /^[4-7][0-9A-F]{31}$/)
  })

  test('the folder is 0700, keys 0600 PKCS#8, and no temp files are left', () => {
    assert.equal(mode(dataDir), 0o700)
    for (const c of [first.ca, first.server, first.client]) {
      assert.equal(mode(c.keyPath), 0o600, c.keyPath)
      assert.match(readFileSync(c.keyPath, 'utf8'), /^-----BEGIN PRIVATE KEY-----\n/)
      assert.equal(mode(c.certPath), 0o644, c.certPath)
    }
    assert.deepEqual(readdirSync(dataDir).sort(), ['ca.crt', 'ca.key', 'client.crt', 'client.key', 'server.crt', 'server.key'])
  })

  test('a second call reuses every file', async () => {
    const again = await ensureDevPki(dataDir, { clock })
    assert.deepEqual(
      [again.ca, again.server, again.client].map((c) => [c.status, c.fingerprint256]),
      [first.ca, first.server, first.client].map((c) => ['reused', c.fingerprint256]),
    )
  })

  test('keeps leaves with 8 days left (82 days on)', async () => {
    const later = await ensureDevPki(dataDir, { clock: new FixedClock(clock.now() + 82 * DAY) })
    assert.equal(later.server.status, 'reused')
    assert.equal(later.client.fingerprint256, first.client.fingerprint256)
  })

  test('85 days on, renews both leaves from the same CA', async () => {
    const at = clock.now() + 85 * DAY
    const later = await ensureDevPki(dataDir, { clock: new FixedClock(at) })
    assert.equal(later.ca.status, 'reused')
    assert.equal(later.ca.fingerprint256, first.ca.fingerprint256)
    assert.equal(later.server.status, 'renewed')
    assert.equal(later.client.status, 'renewed')
    assert.notEqual(later.server.fingerprint256, first.server.fingerprint256)
    assert.notEqual(later.client.fingerprint256, first.client.fingerprint256)
    assert.ok(later.server.notAfter >= at + 89 * DAY)
    assert.equal(verify(later, later.server.certPath, 'sslserver', at), `${later.server.certPath}: OK`)
    assert.equal(verify(later, later.client.certPath, 'sslclient', at), `${later.client.certPath}: OK`)
    // Fresh keys, not the old ones re-signed.
    const spki = (pem: string) => new X509Certificate(pem).publicKey.export({ type: 'spki', format: 'der' }).toString('hex')
    assert.notEqual(spki(later.client.certPem), spki(first.client.certPem))
    assert.notEqual(spki(later.server.certPem), spki(first.server.certPem))
  })
})

describe('ensureDevPki repairs what it cannot reuse', { timeout: 60_000 }, () => {
  const clock = new FixedClock(Date.now())

  test('replaces a leaf whose key does not match its certificate (a crash between the two writes)', async () => {
    const dir = join(tempRoot(), 'd')
    const first = await ensureDevPki(dir, { clock })
    writeFileSync(first.server.keyPath, readFileSync(first.client.keyPath), { mode: 0o600 })
    const again = await ensureDevPki(dir, { clock })
    assert.equal(again.server.status, 'renewed')
    assert.equal(again.client.status, 'reused')
    assert.equal(verify(again, again.server.certPath, 'sslserver'), `${again.server.certPath}: OK`)
    const cert = new X509Certificate(readFileSync(again.server.certPath))
    assert.ok(cert.checkPrivateKey(createPrivateKey(readFileSync(again.server.keyPath))))
  })

  test('does not reuse a key file that others could read', async () => {
    const dir = join(tempRoot(), 'd')
    const first = await ensureDevPki(dir, { clock })
    chmodSync(first.client.keyPath, 0o644)
    const again = await ensureDevPki(dir, { clock })
    assert.equal(again.client.status, 'renewed')
    assert.notEqual(again.client.fingerprint256, first.client.fingerprint256)
    assert.equal(mode(again.client.keyPath), 0o600)
  })

  test('a missing CA key means a new CA, and leaves re-issued under it', async () => {
    const dir = join(tempRoot(), 'd')
    const first = await ensureDevPki(dir, { clock })
    unlinkSync(first.ca.keyPath)
    const again = await ensureDevPki(dir, { clock })
    assert.equal(again.ca.status, 'created')
    assert.notEqual(again.ca.fingerprint256, first.ca.fingerprint256)
    assert.equal(again.server.status, 'renewed')
    assert.equal(again.client.status, 'renewed')
    assert.equal(verify(again, again.client.certPath, 'sslclient'), `${again.client.certPath}: OK`)
  })

  test('replaces a leaf signed by another CA (openssl-made) placed in the folder', async () => {
    const dir = join(tempRoot(), 'd')
    const first = await ensureDevPki(dir, { clock })
    const other = new TestPki(tempRoot())
    const foreign = other.client('dev-client', other.root('foreign-ca'), { san: 'URI:spiffe://portcullis.dev/client/dev' })
    writeFileSync(first.client.certPath, readFileSync(foreign.cert))
    writeFileSync(first.client.keyPath, readFileSync(foreign.key), { mode: 0o600 })
    const again = await ensureDevPki(dir, { clock })
    assert.equal(again.client.status, 'renewed')
    assert.equal(verify(again, again.client.certPath, 'sslclient'), `${again.client.certPath}: OK`)
  })

  test('replaces garbage in a certificate file', async () => {
    const dir = join(tempRoot(), 'd')
    await ensureDevPki(dir, { clock })
    writeFileSync(join(dir, 'ca.crt'), 'not a certificate\n')
    const again = await ensureDevPki(dir, { clock })
    assert.equal(again.ca.status, 'created')
    assert.equal(again.server.status, 'renewed')
  })

  test('tightens an existing folder to 0700', async () => {
    const dir = join(tempRoot(), 'loose')
    mkdirSync(dir, { mode: 0o755 })
    chmodSync(dir, 0o755)
    await ensureDevPki(dir, { clock })
    assert.equal(mode(dir), 0o700)
  })

  test('refuses a data folder path that is a file', async () => {
    const path = join(tempRoot(), 'file')
    writeFileSync(path, '')
    await assert.rejects(ensureDevPki(path, { clock }), (err: NodeJS.ErrnoException) => err.code === 'EEXIST' || err.code === 'ENOTDIR')
    assert.ok(existsSync(path))
  })
})

describe('the dev certificates in a real TLS handshake', { timeout: 30_000 }, () => {
  let pki: DevPki
  const other = new TestPki(tempRoot())
  const foreignCa = other.root('foreign-ca')
  const foreign = other.client('dev-client', foreignCa, { san: 'URI:spiffe://portcullis.dev/client/dev' })

  /** Handshake with a requestCert server on the dev server cert; returns both sides' verdicts. */
  async function handshake(client: { cert: Buffer; key: Buffer }): Promise<{ serverSawAuthorized: boolean; clientAuthorized: boolean }> {
    const server = tls.createServer({
      cert: readFileSync(pki.server.certPath),
      key: readFileSync(pki.server.keyPath),
      ca: readFileSync(pki.ca.certPath),
      requestCert: true,
      rejectUnauthorized: false, // report the verdict instead of aborting, so both outcomes are observable
    })
    const serverSide = new Promise<boolean>((resolve) => {
      server.once('secureConnection', (socket) => {
        resolve(socket.authorized)
        socket.end()
      })
    })
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const port = (server.address() as { port: number }).port
    try {
      const clientAuthorized = await new Promise<boolean>((resolve, reject) => {
        const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(pki.ca.certPath), ...client }, () => {
          resolve(socket.authorized)
          socket.end()
        })
        socket.once('error', reject)
      })
      return { serverSawAuthorized: await serverSide, clientAuthorized }
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }

  test('server and client verify each other with the dev chain', async () => {
    pki = await ensureDevPki(join(tempRoot(), 'tls'), { clock: new FixedClock(Date.now()) })
    const result = await handshake({ cert: readFileSync(pki.client.certPath), key: readFileSync(pki.client.keyPath) })
    assert.deepEqual(result, { serverSawAuthorized: true, clientAuthorized: true })
  })

  test('rejects a client cert from an unknown CA with the same SPIFFE id', async () => {
    const result = await handshake({ cert: readFileSync(foreign.cert), key: readFileSync(foreign.key) })
    assert.deepEqual(result, { serverSawAuthorized: false, clientAuthorized: true })
  })
})
