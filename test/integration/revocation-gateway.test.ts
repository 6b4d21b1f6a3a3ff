/**
 * Revocation at the gateway: adding a certificate to the process's
 * RevocationSet refuses its new and resumed handshakes at once and closes its
 * established connections, with no reload; other certificates are untouched.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { connect, type TLSSocket } from 'node:tls'
import { after, before, test } from 'node:test'
import { Agent, request } from 'undici'
import { waitFor } from '../harness/client.js'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'

let root: CaFiles
let alice: CertFiles
let bob: CertFiles
let upstream: TestUpstream
let gw: TestGateway
const revocation = new RevocationSet()

/** The serial as openssl prints it (uppercase hex, maybe with leading zeros). */
function opensslSerial(cert: string): string {
  return execFileSync('openssl', ['x509', '-in', cert, '-noout', '-serial'], { encoding: 'utf8' }).trim().replace(/^serial=/, '')
}

function agentFor(c: CertFiles): Agent {
  return new Agent({
    connections: 1,
    connect: { ca: readFileSync(root.cert), cert: readFileSync(c.chain), key: readFileSync(c.key), servername: 'localhost' },
  })
}

async function get(agent: Agent): Promise<number> {
  const res = await request(`https://127.0.0.1:${gw.port()}/r`, { dispatcher: agent })
  await res.body.text()
  return res.statusCode
}

/** A TLS 1.3 connection (optionally resuming `session`); resolves with the socket once the server has answered or closed. */
function handshake(c: CertFiles, session?: Buffer): Promise<{ socket: TLSSocket; session: Buffer | undefined; isResumed: boolean; answered: boolean }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined
    const socket = connect({
      host: '127.0.0.1', port: gw.port(), servername: 'localhost', ALPNProtocols: ['http/1.1'], session,
      ca: readFileSync(root.cert), cert: readFileSync(c.chain), key: readFileSync(c.key),
    })
    socket.on('session', (s: Buffer) => (ticket = s))
    socket.once('secureConnect', () => {
      const isResumed = socket.isSessionReused()
      socket.write('GET /r HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      let text = ''
      socket.on('data', (d: Buffer) => (text += d.toString()))
      socket.once('close', () => resolve({ socket, session: ticket, isResumed, answered: text.startsWith('HTTP/1.1 200') }))
    })
    socket.once('error', (err) => (socket.destroyed ? undefined : reject(err)))
  })
}

before(async () => {
  const pki = new TestPki()
  root = pki.root('root')
  const server = pki.server('gateway', root)
  alice = pki.client('alice', root)
  bob = pki.client('bob', root)
  upstream = await startUpstream()
  gw = await startGateway({
    revocation,
    yaml: `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${root.cert} }] }
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: r
    match: { path: { prefix: /r } }
    access: { allowAnyClientCert: true }
    upstream: app
`,
  })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

test('a revocation closes established connections, refuses new and resumed handshakes, and spares others', { timeout: 30_000 }, async () => {
  const aliceAgent = agentFor(alice)
  const bobAgent = agentFor(bob)
  try {
    assert.equal(await get(aliceAgent), 200)
    assert.equal(await get(bobAgent), 200)
    // A resumable TLS 1.3 session for alice, made before the revocation.
    const first = await handshake(alice)
    assert.ok(first.answered)
    await waitFor(() => first.session !== undefined)
    assert.ok(first.session, 'a session ticket was issued')

    const logsBefore = gw.logs.length
    const started = Date.now()
    const added = revocation.add([{ serialNumber: opensslSerial(alice.cert), reason: 'keyCompromise', revokedAt: Date.now() }])
    assert.equal(added.length, 1)

    const closed = () => gw.logs.slice(logsBefore).some((l) => l.reason === 'cert_revoked' && String(l.detail).includes('established connection closed'))
    assert.ok(await waitFor(closed, 1000), 'the established keep-alive connection was closed')
    assert.ok(Date.now() - started < 1000, 'within one second')

    // New connection for alice: refused at the handshake, with the reason logged.
    await assert.rejects(get(aliceAgent))
    const refused = gw.logs.slice(logsBefore).filter((l) => l.type === 'handshake' && l.reason === 'cert_revoked')
    assert.ok(refused.some((l) => /revoked at .*\(keyCompromise\)/.test(String(l.detail))), JSON.stringify(refused))

    // A resumed session does not skip the check.
    const resumed = await handshake(alice, first.session)
    assert.equal(resumed.isResumed, true, 'the session was resumed')
    assert.equal(resumed.answered, false, 'and refused')

    // Bob is untouched, on his existing connection and a new one.
    assert.equal(await get(bobAgent), 200)
    assert.equal((await handshake(bob)).answered, true)
  } finally {
    await aliceAgent.destroy()
    await bobAgent.close()
  }
})

test('matches serials in any spelling and honours the issuer when both sides name it', () => {
  const set = new RevocationSet()
  set.add([{ serialNumber: '00:0A:BC', issuerFingerprint256: 'aa'.repeat(32), reason: 'superseded', revokedAt: 0 }])
  const identity = (serialNumber: string, issuerFingerprint256?: string) => ({ serialNumber, issuerFingerprint256 }) as never
  assert.ok(set.lookup(identity('abc', 'aa'.repeat(32))))
  assert.ok(set.lookup(identity('0ABC')), 'no issuer on the connection: the serial decides')
  assert.equal(set.lookup(identity('abc', 'bb'.repeat(32))), undefined, 'another issuer with the same serial')
  assert.equal(set.add([{ serialNumber: 'abc', issuerFingerprint256: 'aa'.repeat(32), reason: 'x', revokedAt: 1 }]).length, 0, 'no duplicate')
  assert.equal(set.size, 1)
})
