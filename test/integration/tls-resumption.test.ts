/**
 * Session resumption never skips identity checks. Sessions come from
 * `openssl s_client -sess_out/-sess_in` (TLS 1.3 and 1.2) and from Node's
 * client (`session` option, which can also resume under another SNI name).
 * The server is a tls.Server built from ListenerTls as the listener builds it.
 */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import tls from 'node:tls'
import { listenerSchema } from '../../src/config/schema/listeners.js'
import { FixedClock, systemClock, type Clock } from '../../src/shared/clock.js'
import { TicketKeyRotator, compileListenerTls, makeSniCallback, type ListenerTls, type PeerVerdict } from '../../src/proxy/tls/listener-tls.js'
import { TestPki, pem, type CaFiles, type CertFiles } from '../harness/pki.js'

const T = { timeout: 20_000 }
const versions = ['TLSv1.3', 'TLSv1.2'] as const
type Version = (typeof versions)[number]

const pki = new TestPki()
const caA = pki.root('ca-a')
const caA2 = pki.root('ca-a-next')
const caB = pki.root('ca-b')
const interA = pki.intermediate('int-a', caA)
const srvA = pki.server('srv-a', caA, { san: 'DNS:a.example,DNS:localhost,IP:127.0.0.1' })
const srvB = pki.server('srv-b', caB, { san: 'DNS:b.example' })
const alice = pki.client('alice', caA)
const viaInt = pki.client('via-int', interA, {}, [interA])
const source = { baseDir: pki.dir, env: {} }

/**
 * A leaf chained through a look-alike of ca-a: same subject and same subject
 * key identifier as ca-a, but signed by ca-b. Made with openssl directly
 * because the harness always derives the key identifier from the key.
 */
function lookAlikeChain(): CertFiles {
  const dir = pki.dir
  const file = (name: string) => join(dir, name)
  const ossl = (args: string[]) => execFileSync('openssl', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] })
  const ski = ossl(['x509', '-in', caA.cert, '-noout', '-ext', 'subjectKeyIdentifier']).split('\n')[1]!.trim()
  for (const n of ['look', 'forged']) ossl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file(`${n}.key`)])
  writeFileSync(file('look.ext'), `[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=${ski}\nauthorityKeyIdentifier=keyid\n`)
  writeFileSync(file('forged.ext'), '[v3]\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\nauthorityKeyIdentifier=keyid\n')
  ossl(['req', '-new', '-key', file('look.key'), '-subj', '/CN=ca-a/O=Portcullis Test', '-out', file('look.csr')])
  ossl(['x509', '-req', '-in', file('look.csr'), '-CA', caB.cert, '-CAkey', caB.key, '-set_serial', '0x10ca1', '-days', '30', '-extfile', file('look.ext'), '-extensions', 'v3', '-out', file('look.crt')])
  ossl(['req', '-new', '-key', file('forged.key'), '-subj', '/CN=forged/O=Portcullis Test', '-out', file('forged.csr')])
  ossl(['x509', '-req', '-in', file('forged.csr'), '-CA', file('look.crt'), '-CAkey', file('look.key'), '-set_serial', '0xf0e9ed', '-days', '30', '-extfile', file('forged.ext'), '-extensions', 'v3', '-out', file('forged.crt')])
  writeFileSync(file('forged.chain.pem'), pem(file('forged.crt')) + pem(file('look.crt')))
  return { cert: file('forged.crt'), key: file('forged.key'), chain: file('forged.chain.pem') }
}
const forged = lookAlikeChain()

interface ListenerOptions {
  readonly minVersion?: Version
  readonly trust?: readonly CaFiles[]
  readonly perName?: boolean
  readonly unknownServerName?: 'default' | 'reject'
  readonly sessionTickets?: boolean
}

function compile(o: ListenerOptions = {}, clock: Clock = systemClock, previous?: ListenerTls): ListenerTls {
  const cfg = listenerSchema.parse({
    name: 'edge',
    port: 0,
    tls: {
      minVersion: o.minVersion ?? 'TLSv1.2',
      unknownServerName: o.unknownServerName ?? 'default',
      sessionTickets: o.sessionTickets ?? true,
      certificates: [
        { serverNames: ['a.example'], cert: { file: srvA.chain }, key: { file: srvA.key } },
        { serverNames: ['b.example'], cert: { file: srvB.chain }, key: { file: srvB.key } },
      ],
      clientAuth: {
        trustBundle: (o.trust ?? [caA]).map((c) => ({ file: c.cert })),
        perServerName: o.perName ? [{ serverNames: ['b.example'], trustBundle: [{ file: caB.cert }] }] : [],
      },
    },
  })
  return compileListenerTls(cfg, { source, clock, ...(previous ? { previous } : {}) })
}

interface Seen {
  readonly verdict: PeerVerdict
  readonly isResumed: boolean
  readonly protocol: string | null
}

/** The listener's wiring: options spread, SNI and verifyPeer follow `current`, reload = swap (+ setSecureContext). */
async function serve(initial: ListenerTls) {
  let current = initial
  const seen: Seen[] = []
  const server = tls.createServer({ ...initial.serverOptions, SNICallback: makeSniCallback(() => current) }, (socket) => {
    const verdict = current.verifyPeer(socket)
    seen.push({ verdict, isResumed: socket.isSessionReused(), protocol: socket.getProtocol() })
    socket.on('error', () => {})
    socket.end('denial' in verdict ? `DENY ${verdict.denial.reason}\n` : `OK\n`)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return {
    server,
    port: (server.address() as { port: number }).port,
    seen,
    last: () => seen.at(-1)!,
    swap(next: ListenerTls, { setSecureContext }: { setSecureContext: boolean }) {
      current = next
      if (setSecureContext) server.setSecureContext(next.defaultContextOptions)
    },
    close: () => new Promise<void>((r) => server.close(() => r())),
  }
}

/** openssl s_client saving (-sess_out) or resuming (-sess_in) a session; returns its output. */
function sClient(port: number, version: Version, client: CertFiles, session: { out?: string; in?: string }, servername = 'a.example'): Promise<string> {
  const args = ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', servername, '-ign_eof', version === 'TLSv1.3' ? '-tls1_3' : '-tls1_2', '-cert', client.cert, '-key', client.key, '-CAfile', caA.cert]
  if (client.chain !== client.cert) args.push('-cert_chain', client.chain) // s_client sends only the leaf of -cert
  if (session.out) args.push('-sess_out', session.out)
  if (session.in) args.push('-sess_in', session.in)
  return new Promise((resolve) => {
    const p = spawn('openssl', args, { stdio: ['ignore', 'pipe', 'ignore'] })
    let out = ''
    p.stdout.on('data', (d: Buffer) => (out += d.toString()))
    const timer = setTimeout(() => p.kill(), 8000)
    p.on('close', () => {
      clearTimeout(timer)
      resolve(out)
    })
  })
}

let sessionFiles = 0
const sessionFile = () => join(pki.dir, `session-${++sessionFiles}.pem`)

/** Node's client: returns the reply line and the session to resume with. */
async function nodeConnect(port: number, client: CertFiles, servername: string, session?: Buffer): Promise<{ reply: string; session: Buffer | undefined }> {
  const socket = tls.connect({ host: '127.0.0.1', port, servername, session, key: pem(client.key), cert: pem(client.chain), minVersion: 'TLSv1.3', rejectUnauthorized: false })
  let reply = ''
  let saved: Buffer | undefined
  socket.on('session', (s: Buffer) => (saved = s))
  socket.on('error', () => {})
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => (reply += d))
  await new Promise<void>((r) => socket.on('close', () => r()))
  return { reply: reply.trim(), session: saved }
}

function denial(seen: Seen) {
  assert.ok('denial' in seen.verdict, `expected a denial, got ${JSON.stringify(seen.verdict)}`)
  return seen.verdict.denial
}
function identity(seen: Seen) {
  assert.ok('identity' in seen.verdict && seen.verdict.identity, `expected an identity, got ${JSON.stringify(seen.verdict)}`)
  return seen.verdict.identity
}
const notAfterOf = (c: CertFiles) => Date.parse(execFileSync('openssl', ['x509', '-in', c.cert, '-noout', '-enddate'], { encoding: 'utf8' }).trim().split('=')[1]!)

for (const version of versions) {
  describe(`${version} resumption`, T, () => {
    it('resumes a session and runs verifyPeer on it again', async () => {
      const s = await serve(compile())
      try {
        const file = sessionFile()
        await sClient(s.port, version, alice, { out: file })
        const out = await sClient(s.port, version, alice, { in: file })
        assert.match(out, new RegExp(`^Reused, ${version}`, 'm'))
        assert.equal(s.seen.length, 2)
        assert.deepEqual([s.seen[0]!.isResumed, s.seen[1]!.isResumed], [false, true])
        assert.equal(s.seen[1]!.protocol, version)
        assert.equal(identity(s.seen[1]!).fingerprint256, identity(s.seen[0]!).fingerprint256)
        assert.match(out, /^OK$/m)
      } finally {
        await s.close()
      }
    })

    it('refuses a resumed session whose certificate has expired by the clock since', async () => {
      const clock = new FixedClock(Date.now())
      const s = await serve(compile({}, clock))
      try {
        const file = sessionFile()
        await sClient(s.port, version, alice, { out: file })
        identity(s.last())
        clock.set(notAfterOf(alice) + 1000)
        const out = await sClient(s.port, version, alice, { in: file })
        assert.equal(s.last().isResumed, true)
        assert.equal(denial(s.last()).reason, 'cert_expired')
        assert.equal(denial(s.last()).detail, `expired at ${new Date(notAfterOf(alice)).toISOString()}`)
        assert.match(out, /^DENY cert_expired$/m)
      } finally {
        await s.close()
      }
    })

    it('refuses a resumed session whose anchor was removed, even when the old ticket key still works', async () => {
      const s = await serve(compile({ trust: [caA, caA2] }))
      try {
        const file = sessionFile()
        await sClient(s.port, version, alice, { out: file })
        identity(s.last())
        s.swap(compile({ trust: [caA2] }), { setSecureContext: false })
        await sClient(s.port, version, alice, { in: file })
        assert.equal(s.last().isResumed, true)
        assert.equal(denial(s.last()).reason, 'cert_unknown_ca')
        assert.match(denial(s.last()).detail ?? '', /\(resumed session\)$/)
      } finally {
        await s.close()
      }
    })

    it('does not resume across a reload with setSecureContext, and refuses the removed anchor on the full handshake', async () => {
      const s = await serve(compile({ trust: [caA, caA2] }))
      try {
        const file = sessionFile()
        await sClient(s.port, version, alice, { out: file })
        s.swap(compile({ trust: [caA2] }), { setSecureContext: true })
        await sClient(s.port, version, alice, { in: file })
        assert.equal(s.last().isResumed, false)
        assert.equal(denial(s.last()).reason, 'cert_unknown_ca')
      } finally {
        await s.close()
      }
    })

    it('rebuilds the path of a resumed session through the intermediate learned on its full handshake', async () => {
      const first = compile()
      const s = await serve(first)
      try {
        const file = sessionFile()
        await sClient(s.port, version, viaInt, { out: file })
        assert.equal(identity(s.last()).chainDer.length, 1)
        await sClient(s.port, version, viaInt, { in: file })
        assert.equal(s.last().isResumed, true)
        assert.equal(identity(s.last()).issuerFingerprint256, identity(s.seen[0]!).issuerFingerprint256)
        // A reload that carries the learned intermediates keeps resumption working...
        s.swap(compile({}, systemClock, first), { setSecureContext: false })
        await sClient(s.port, version, viaInt, { in: file })
        assert.equal(s.last().isResumed, true)
        identity(s.last())
        // ...and without them the path cannot be rebuilt, so the session is refused, not trusted.
        s.swap(compile(), { setSecureContext: false })
        await sClient(s.port, version, viaInt, { in: file })
        assert.equal(s.last().isResumed, true)
        assert.equal(denial(s.last()).reason, 'cert_unknown_ca')
      } finally {
        await s.close()
      }
    })

    it('stops resuming sessions after a ticket key rotation', async () => {
      const s = await serve(compile())
      const rotator = new TicketKeyRotator({ intervalMs: 3_600_000, apply: (k) => s.server.setTicketKeys(k) })
      try {
        rotator.start()
        const file = sessionFile()
        await sClient(s.port, version, alice, { out: file })
        await sClient(s.port, version, alice, { in: file })
        assert.equal(s.last().isResumed, true)
        rotator.rotate()
        await sClient(s.port, version, alice, { in: file })
        assert.equal(s.last().isResumed, false)
        identity(s.last())
      } finally {
        rotator.stop()
        await s.close()
      }
    })
  })
}

describe('resumption and server names', T, () => {
  it('refuses a TLS 1.3 session resumed under a server name whose trust bundle does not cover it', async () => {
    const s = await serve(compile({ minVersion: 'TLSv1.3', perName: true }))
    try {
      const first = await nodeConnect(s.port, alice, 'a.example')
      assert.equal(first.reply, 'OK')
      assert.ok(first.session)
      const again = await nodeConnect(s.port, alice, 'b.example', first.session)
      assert.equal(s.last().isResumed, true) // OpenSSL resumed it: Node runs no SNI callback on resumption
      assert.equal(denial(s.last()).reason, 'cert_unknown_ca')
      assert.equal(again.reply, 'DENY cert_unknown_ca')
    } finally {
      await s.close()
    }
  })

  it('checks signatures on resumption: a look-alike of an anchor trusted for another name gets nowhere', async () => {
    const s = await serve(compile({ minVersion: 'TLSv1.3', perName: true }))
    try {
      const first = await nodeConnect(s.port, forged, 'b.example') // valid under ca-b via the look-alike intermediate
      assert.equal(first.reply, 'OK')
      await nodeConnect(s.port, forged, 'a.example', first.session)
      assert.equal(s.last().isResumed, true)
      assert.equal(denial(s.last()).reason, 'cert_unknown_ca')
      assert.match(denial(s.last()).detail ?? '', /untrusted issuer O=Portcullis Test,CN=ca-b for a\.example/)
    } finally {
      await s.close()
    }
  })

  it('refuses a session resumed under an unknown name when unknownServerName is reject', async () => {
    const s = await serve(compile({ minVersion: 'TLSv1.3', unknownServerName: 'reject' }))
    try {
      const first = await nodeConnect(s.port, alice, 'a.example')
      await nodeConnect(s.port, alice, 'other.example', first.session)
      assert.equal(s.last().isResumed, true)
      assert.equal(denial(s.last()).reason, 'misdirected_request')
    } finally {
      await s.close()
    }
  })

  it('resumes nothing, in either version, when sessionTickets is false', async () => {
    const s = await serve(compile({ sessionTickets: false }))
    try {
      for (const version of versions) {
        const file = sessionFile()
        await sClient(s.port, version, alice, { out: file })
        await sClient(s.port, version, alice, { in: file })
        assert.equal(s.last().isResumed, false, version)
        assert.equal(s.last().protocol, version)
        identity(s.last())
      }
    } finally {
      await s.close()
    }
  })

  it('issues no TLS 1.2 tickets when some names have their own trust bundle', async () => {
    const lt = compile({ minVersion: 'TLSv1.2', perName: true })
    assert.equal(lt.hasSessionTickets, false)
    const s = await serve(lt)
    try {
      const file = sessionFile()
      await sClient(s.port, 'TLSv1.2', alice, { out: file })
      await sClient(s.port, 'TLSv1.2', alice, { in: file })
      assert.equal(s.seen.length, 2)
      assert.equal(s.last().isResumed, false)
      identity(s.last())
    } finally {
      await s.close()
    }
  })
})
