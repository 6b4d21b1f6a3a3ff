/**
 * Client-certificate verification over real TLS on 127.0.0.1: a tls.Server
 * (and one https.Server) built from ListenerTls options, clients from
 * tls.connect, openssl s_client and curl, certificates from openssl.
 */
import assert from 'node:assert/strict'
import { execFile, execFileSync, spawn } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { once } from 'node:events'
import https from 'node:https'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { promisify } from 'node:util'
import { listenerSchema } from '../../src/config/schema/listeners.js'
import { FixedClock, systemClock, type Clock } from '../../src/shared/clock.js'
import { compileListenerTls, makeSniCallback, unknownServerNameCode, type ListenerTls, type PeerVerdict } from '../../src/proxy/tls/listener-tls.js'
import { identityFromPeer } from '../../src/proxy/tls/identity.js'
import type { Identity } from '../../src/proxy/context.js'
import { TestPki, pem, type CaFiles, type CertFiles } from '../harness/pki.js'

const run = promisify(execFile)
const T = { timeout: 15_000 }

// ---- certificates (openssl) ----
const pki = new TestPki()
const caA = pki.root('ca-a')
const caA2 = pki.root('ca-a-next')
const caB = pki.root('ca-b')
const evil = pki.root('evil-ca')
const interA = pki.intermediate('int-a', caA)
const srvA = pki.server('srv-a', caA, { san: 'DNS:a.example,DNS:localhost,IP:127.0.0.1' })
const srvB = pki.server('srv-b', caB, { san: 'DNS:b.example' })
const alice = pki.client('alice', caA)
const aliceNext = pki.client('alice-next', caA2)
const bob = pki.client('bob', caB)
const mallory = pki.client('mallory', evil)
const day = 86_400_000
const expired = pki.client('expired', caA, { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) })
const future = pki.client('future', caA, { notBefore: new Date(Date.now() + day), notAfter: new Date(Date.now() + 10 * day) })
const serverOnly = pki.client('server-only', caA, { eku: 'serverAuth' })
const noSignature = pki.client('no-signature', caA, { keyUsage: 'critical,keyEncipherment' })
const viaInt = pki.client('via-int', interA, {}, [interA])
const rich = pki.client(
  'rich',
  interA,
  {
    subject: '/CN=orders/O=Acme/OU=payments',
    extraExtensions: 'subjectAltName=@alt\n[alt]\nDNS.1=orders.acme.test\nURI.1=spiffe://acme.test/ns/pay/sa/orders\nemail.1=ops@acme.test\nIP.1=10.9.8.7\nIP.2=fd00::1:2\n',
  },
  [interA],
)

// ---- config and server ----
const source = { baseDir: pki.dir, env: {} }

function listener(tlsOver: Record<string, unknown> = {}, clientAuth: Record<string, unknown> = {}) {
  return listenerSchema.parse({
    name: 'edge',
    port: 0,
    tls: {
      certificates: [{ serverNames: ['a.example'], cert: { file: srvA.chain }, key: { file: srvA.key } }],
      clientAuth: { trustBundle: [{ file: caA.cert }], ...clientAuth },
      ...tlsOver,
    },
  })
}

function compile(tlsOver: Record<string, unknown> = {}, clientAuth: Record<string, unknown> = {}, clock: Clock = systemClock): ListenerTls {
  return compileListenerTls(listener(tlsOver, clientAuth), { source, clock })
}

interface Seen {
  readonly verdict: PeerVerdict
  readonly isResumed: boolean
  readonly hasPeerCert: boolean
  /** identityFromPeer on Node's detailed peer certificate, for comparison with verifyPeer's. */
  readonly fromPeer: Identity | undefined
}

/** A tls.Server as the listener builds it: options spread, SNI following `get()`, verifyPeer at secureConnection. */
async function serve(get: () => ListenerTls) {
  const seen: Seen[] = []
  const clientErrors: NodeJS.ErrnoException[] = []
  const server = tls.createServer({ ...get().serverOptions, SNICallback: makeSniCallback(get) }, (socket) => {
    const verdict = get().verifyPeer(socket)
    const peer = socket.getPeerCertificate(true)
    const hasPeerCert = peer.raw !== undefined
    seen.push({ verdict, isResumed: socket.isSessionReused(), hasPeerCert, fromPeer: hasPeerCert && 'identity' in verdict ? identityFromPeer(peer) : undefined })
    socket.on('error', () => {})
    socket.end('denial' in verdict ? `DENY ${verdict.denial.reason}\n` : `OK ${verdict.identity?.subject ?? '-'}\n`)
  })
  server.on('tlsClientError', (err) => clientErrors.push(err))
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  return { server, port, seen, clientErrors, close: () => new Promise<void>((r) => server.close(() => r())) }
}

interface Outcome {
  readonly reply: string
  readonly error: Error | undefined
  /** CN of the certificate the server presented. */
  readonly serverCn: string | undefined
}

/** Connects with Node's TLS client (verifying the server), returns the server's one-line reply or the error. */
async function connect(port: number, opts: { client?: CertFiles; servername?: string; ca?: CaFiles; anyServerName?: boolean } = {}): Promise<Outcome> {
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    ...(opts.anyServerName ? { checkServerIdentity: () => undefined } : {}),
    ...(opts.servername ? { servername: opts.servername } : {}),
    ca: pem((opts.ca ?? caA).cert),
    ...(opts.client ? { key: pem(opts.client.key), cert: pem(opts.client.chain) } : {}),
  })
  let reply = ''
  let error: Error | undefined
  let serverCn: string | undefined
  socket.on('secureConnect', () => (serverCn = String(socket.getPeerCertificate().subject?.CN)))
  socket.setEncoding('utf8')
  socket.on('data', (d: string) => (reply += d))
  socket.on('error', (e) => (error = e))
  await new Promise<void>((resolve) => socket.on('close', () => resolve()))
  return { reply: reply.trim(), error, serverCn }
}

function denialOf(seen: Seen | undefined) {
  assert.ok(seen, 'the server saw a connection')
  assert.ok('denial' in seen.verdict, `expected a denial, got ${JSON.stringify(seen.verdict)}`)
  return seen.verdict.denial
}

function identityOf(seen: Seen | undefined) {
  assert.ok(seen, 'the server saw a connection')
  assert.ok('identity' in seen.verdict, `expected an identity, got ${JSON.stringify(seen.verdict)}`)
  return seen.verdict.identity
}

const opensslDate = (path: string, which: 'startdate' | 'enddate') =>
  Date.parse(execFileSync('openssl', ['x509', '-in', path, '-noout', `-${which}`], { encoding: 'utf8' }).trim().split('=')[1]!)

describe('client certificate modes', T, () => {
  it('required: accepts a client certificate from the trust bundle', async () => {
    const s = await serve(() => compile())
    try {
      const out = await connect(s.port, { client: alice })
      assert.equal(out.reply, 'OK O=Portcullis Test,CN=alice')
      assert.equal(identityOf(s.seen[0])?.subject, 'O=Portcullis Test,CN=alice')
    } finally {
      await s.close()
    }
  })

  it('required: refuses a connection without a certificate with client_cert_required', async () => {
    const s = await serve(() => compile())
    try {
      assert.equal((await connect(s.port)).reply, 'DENY client_cert_required')
      assert.equal(denialOf(s.seen[0]).reason, 'client_cert_required')
    } finally {
      await s.close()
    }
  })

  it('optional: lets a client without a certificate in anonymously, verifies one that is sent', async () => {
    const s = await serve(() => compile({}, { mode: 'optional' }))
    try {
      await connect(s.port)
      await connect(s.port, { client: alice })
      await connect(s.port, { client: mallory })
      assert.equal(identityOf(s.seen[0]), undefined)
      assert.equal(identityOf(s.seen[1])?.subject, 'O=Portcullis Test,CN=alice')
      assert.equal(denialOf(s.seen[2]).reason, 'cert_unknown_ca')
    } finally {
      await s.close()
    }
  })

  it('none: does not ask for a certificate', async () => {
    const s = await serve(() => compile({}, { mode: 'none', trustBundle: [] }))
    try {
      const out = await connect(s.port, { client: alice })
      assert.equal(out.reply, 'OK -')
      assert.equal(s.seen[0]?.hasPeerCert, false)
      assert.equal(identityOf(s.seen[0]), undefined)
    } finally {
      await s.close()
    }
  })
})

describe('refused client certificates', T, () => {
  let s: Awaited<ReturnType<typeof serve>>
  let current = compile({}, { mode: 'optional' })
  before(async () => {
    s = await serve(() => current)
  })
  after(() => s.close())
  /** What the listener does on reload: new contexts for new handshakes. */
  const swap = (next: ListenerTls) => {
    current = next
    s.server.setSecureContext(next.defaultContextOptions)
  }

  const verdictFor = async (client: CertFiles) => {
    const n = s.seen.length
    await connect(s.port, { client })
    return s.seen[n]
  }

  it('rejects a client cert from an unknown CA, naming the issuer', async () => {
    const d = denialOf(await verdictFor(mallory))
    assert.equal(d.reason, 'cert_unknown_ca')
    assert.match(d.detail ?? '', /untrusted issuer O=Portcullis Test,CN=evil-ca/)
  })

  it('rejects a self-signed client certificate as from an unknown CA', async () => {
    const selfSigned = { cert: evil.cert, key: evil.key, chain: evil.cert }
    const d = denialOf(await verdictFor(selfSigned))
    assert.equal(d.reason, 'cert_unknown_ca')
    assert.match(d.detail ?? '', /^self-signed certificate O=Portcullis Test,CN=evil-ca/)
  })

  it('rejects an expired certificate with its notAfter', async () => {
    const d = denialOf(await verdictFor(expired))
    assert.equal(d.reason, 'cert_expired')
    assert.equal(d.detail, `expired at ${new Date(opensslDate(expired.cert, 'enddate')).toISOString()}`)
  })

  it('rejects a certificate that is not yet valid with its notBefore', async () => {
    const d = denialOf(await verdictFor(future))
    assert.equal(d.reason, 'cert_not_yet_valid')
    assert.equal(d.detail, `valid from ${new Date(opensslDate(future.cert, 'startdate')).toISOString()}`)
  })

  // The details show our own check decided, not only OpenSSL's INVALID_PURPOSE.
  it('rejects a certificate whose extendedKeyUsage is serverAuth only', async () => {
    const d = denialOf(await verdictFor(serverOnly))
    assert.equal(d.reason, 'cert_wrong_usage')
    assert.match(d.detail ?? '', /^extendedKeyUsage lacks clientAuth/)
  })

  it('rejects a certificate whose keyUsage lacks digitalSignature', async () => {
    const d = denialOf(await verdictFor(noSignature))
    assert.equal(d.reason, 'cert_wrong_usage')
    assert.equal(d.detail, 'keyUsage lacks digitalSignature')
  })

  it('checks validity with the injected clock, not the system time', async () => {
    const clock = new FixedClock(opensslDate(alice.cert, 'enddate') + 1000)
    swap(compile({}, { mode: 'optional' }, clock))
    try {
      assert.equal(denialOf(await verdictFor(alice)).reason, 'cert_expired')
      clock.set(opensslDate(alice.cert, 'startdate') - 1000)
      assert.equal(denialOf(await verdictFor(alice)).reason, 'cert_not_yet_valid')
    } finally {
      swap(compile({}, { mode: 'optional' }))
    }
  })

  it('rejects a chain longer than maxChainDepth and accepts it within the limit', async () => {
    swap(compile({}, { mode: 'optional', maxChainDepth: 1 }))
    const d = denialOf(await verdictFor(viaInt))
    assert.equal(d.reason, 'cert_chain_too_long')
    assert.match(d.detail ?? '', /chain of 2 CA certificates is longer than maxChainDepth 1/)
    swap(compile({}, { mode: 'optional', maxChainDepth: 2 }))
    assert.equal(identityOf(await verdictFor(viaInt))?.subject, 'O=Portcullis Test,CN=via-int')
    swap(compile({}, { mode: 'optional' }))
  })

  it('accepts clients of the old and the new CA while both are in the bundle', async () => {
    swap(compile({}, { trustBundle: [{ file: caA.cert }, { file: caA2.cert }] }))
    assert.equal(identityOf(await verdictFor(alice))?.subject, 'O=Portcullis Test,CN=alice')
    assert.equal(identityOf(await verdictFor(aliceNext))?.subject, 'O=Portcullis Test,CN=alice-next')
    swap(compile({}, { trustBundle: [{ file: caA2.cert }] }))
    assert.equal(denialOf(await verdictFor(alice)).reason, 'cert_unknown_ca')
    swap(compile({}, { mode: 'optional' }))
  })
})

describe('server names', T, () => {
  const twoNames = (unknownServerName: 'default' | 'reject') =>
    compile(
      {
        unknownServerName,
        certificates: [
          { serverNames: ['a.example'], cert: { file: srvA.chain }, key: { file: srvA.key } },
          { serverNames: ['b.example'], cert: { file: srvB.chain }, key: { file: srvB.key } },
        ],
      },
      { perServerName: [{ serverNames: ['b.example'], trustBundle: [{ file: caB.cert }] }] },
    )

  it("accepts partner A's CA on a.example and refuses it on b.example (per-name trust bundles)", async () => {
    const s = await serve(() => twoNames('default'))
    try {
      const a = await connect(s.port, { client: alice, servername: 'a.example' })
      assert.equal(a.reply, 'OK O=Portcullis Test,CN=alice')
      assert.equal(a.serverCn, 'srv-a')
      const b = await connect(s.port, { client: alice, servername: 'b.example', ca: caB })
      assert.equal(b.reply, 'DENY cert_unknown_ca')
      assert.equal(b.serverCn, 'srv-b')
      assert.equal((await connect(s.port, { client: bob, servername: 'b.example', ca: caB })).reply, 'OK O=Portcullis Test,CN=bob')
      assert.equal((await connect(s.port, { client: bob, servername: 'a.example' })).reply, 'DENY cert_unknown_ca')
      assert.match(denialOf(s.seen[1]).detail ?? '', /CN=ca-a for b\.example/)
    } finally {
      await s.close()
    }
  })

  it('serves the default certificate and trust for an unknown name when unknownServerName is default', async () => {
    const s = await serve(() => twoNames('default'))
    try {
      const out = await connect(s.port, { client: alice, servername: 'other.example', anyServerName: true })
      assert.equal(out.serverCn, 'srv-a')
      assert.equal(out.reply, 'OK O=Portcullis Test,CN=alice')
      const outB = await connect(s.port, { client: bob, servername: 'other.example', anyServerName: true })
      assert.equal(outB.reply, 'DENY cert_unknown_ca') // the default trust, not b.example's
    } finally {
      await s.close()
    }
  })

  it('fails the handshake for an unknown name when unknownServerName is reject', async () => {
    const s = await serve(() => twoNames('reject'))
    try {
      const out = await connect(s.port, { client: alice, servername: 'other.example' })
      assert.ok(out.error)
      assert.equal(s.seen.length, 0)
      assert.equal(s.clientErrors[0]?.code, unknownServerNameCode)
      assert.equal((await connect(s.port, { client: alice, servername: 'a.example' })).reply, 'OK O=Portcullis Test,CN=alice')
    } finally {
      await s.close()
    }
  })

  it('refuses a client that sends no server name when unknownServerName is reject', async () => {
    const s = await serve(() => twoNames('reject'))
    try {
      assert.equal((await connect(s.port, { client: alice })).reply, 'DENY misdirected_request')
    } finally {
      await s.close()
    }
  })
})

describe('identity', T, () => {
  it('parses subject, issuer, serial, validity, SANs and fingerprints as openssl x509 prints them', async () => {
    const s = await serve(() => compile())
    try {
      await connect(s.port, { client: rich })
      const id = identityOf(s.seen[0])
      assert.ok(id)
      const x = (args: string[], file = rich.cert) => execFileSync('openssl', ['x509', '-in', file, '-noout', ...args], { encoding: 'utf8' }).trim()
      const fp = (file: string) => x(['-fingerprint', '-sha256'], file).split('=')[1]!.replace(/:/g, '').toLowerCase()
      assert.equal(id.fingerprint256, fp(rich.cert))
      assert.equal(id.issuerFingerprint256, fp(interA.cert))
      assert.equal(id.serialNumber, x(['-serial']).split('=')[1]!.toLowerCase())
      assert.equal(id.subject, x(['-subject', '-nameopt', 'RFC2253']).replace(/^subject=/, ''))
      assert.equal(id.issuer, x(['-issuer', '-nameopt', 'RFC2253']).replace(/^issuer=/, ''))
      assert.deepEqual(id.subjectFields, Object.assign(Object.create(null), { CN: ['orders'], O: ['Acme'], OU: ['payments'] }))
      assert.equal(id.notBefore, opensslDate(rich.cert, 'startdate'))
      assert.equal(id.notAfter, opensslDate(rich.cert, 'enddate'))
      assert.match(x(['-ext', 'subjectAltName']), /DNS:orders\.acme\.test, URI:spiffe:\/\/acme\.test\/ns\/pay\/sa\/orders, email:ops@acme\.test, IP Address:10\.9\.8\.7, IP Address:FD00:0:0:0:0:0:1:2/)
      assert.deepEqual(id.san, { dns: ['orders.acme.test'], uri: ['spiffe://acme.test/ns/pay/sa/orders'], email: ['ops@acme.test'], ip: ['10.9.8.7', 'fd00::1:2'] })
      assert.equal(id.spiffeId, 'spiffe://acme.test/ns/pay/sa/orders')
      assert.deepEqual(id.der, new X509Certificate(pem(rich.cert)).raw)
      assert.deepEqual(id.chainDer, [new X509Certificate(pem(interA.cert)).raw])
      assert.deepEqual(s.seen[0]?.fromPeer, id) // identityFromPeer on Node's chain agrees on a full handshake
    } finally {
      await s.close()
    }
  })
})

describe('independent clients', T, () => {
  it('openssl s_client with a trusted certificate is accepted, with an untrusted one refused', async () => {
    const s = await serve(() => compile())
    try {
      const sClient = (c: CertFiles) =>
        new Promise<string>((resolve) => {
          const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${s.port}`, '-ign_eof', '-cert', c.cert, '-key', c.key, '-CAfile', caA.cert], { stdio: ['ignore', 'pipe', 'ignore'] })
          let out = ''
          p.stdout.on('data', (d: Buffer) => (out += d.toString()))
          const timer = setTimeout(() => p.kill(), 5000)
          p.on('close', () => {
            clearTimeout(timer)
            resolve(out)
          })
        })
      assert.match(await sClient(alice), /^OK O=Portcullis Test,CN=alice$/m)
      assert.match(await sClient(mallory), /^DENY cert_unknown_ca$/m)
    } finally {
      await s.close()
    }
  })

  it('curl through an https server: 200 with a trusted certificate, the denial without', async () => {
    let current = compile()
    const server = https.createServer({ ...current.serverOptions, SNICallback: makeSniCallback(() => current) }, (req, res) => {
      const v = current.verifyPeer(req.socket as tls.TLSSocket)
      if ('denial' in v) res.writeHead(v.denial.reason === 'client_cert_required' ? 401 : 403).end(v.denial.reason)
      else res.end(v.identity?.subject ?? '-')
    })
    server.listen(0, '127.0.0.1')
    await once(server, 'listening')
    const port = (server.address() as { port: number }).port
    const curl = async (args: string[]) => {
      const { stdout } = await run('curl', ['-sS', '--max-time', '5', '--resolve', `localhost:${port}:127.0.0.1`, '--cacert', caA.cert, '-w', ' %{http_code}', ...args, `https://localhost:${port}/`])
      return stdout
    }
    try {
      assert.equal(await curl(['--cert', alice.cert, '--key', alice.key]), 'O=Portcullis Test,CN=alice 200')
      assert.equal(await curl([]), 'client_cert_required 401')
      assert.equal(await curl(['--cert', mallory.cert, '--key', mallory.key]), 'cert_unknown_ca 403')
      current = compile({}, { trustBundle: [{ file: caA2.cert }] })
      server.setSecureContext(current.defaultContextOptions)
      assert.equal(await curl(['--cert', alice.cert, '--key', alice.key]), 'cert_unknown_ca 403')
    } finally {
      server.closeAllConnections()
      await new Promise<void>((r) => server.close(() => r()))
    }
  })
})
