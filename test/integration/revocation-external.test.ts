/**
 * Revocation checking of client certificates from a partner's own CA, end to
 * end: the partner PKI is run by the openssl CLI (`openssl ca -revoke`,
 * `-gencrl`, and `openssl ocsp -index` as the responder), its CRLs are served
 * by a local HTTP server at the distribution points written into the
 * certificates, and real TLS clients connect to a real gateway.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { monitorEventLoopDelay, performance } from 'node:perf_hooks'
import { after, before, describe, test } from 'node:test'
import { connect, type TLSSocket } from 'node:tls'
import { Registry } from 'prom-client'
import { Agent, request } from 'undici'
import { attempt, waitFor, type Outcome } from '../harness/client.js'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { PartnerCa, startOcspResponder, type OcspResponder } from './partner-ca.js'

const T = { timeout: 30_000 }

const pki = new TestPki()
const gwRoot = pki.root('gw-root')
const server = pki.server('gateway', gwRoot)
const root = pki.root('partner-root')
const rootCa = new PartnerCa(pki, root)

/** The CRL distribution point server: path → DER, and fetch counts. */
const served = new Map<string, Buffer>()
const fetches = new Map<string, number>()
let cdp: Server
let cdpBase = ''
/** URLs where nothing listens. */
let deadBase = ''
let ocsp: OcspResponder
let upstream: TestUpstream

let issuing: CaFiles
let issuingCa: PartnerCa
let issuing2: CaFiles
const leaves: Record<string, CertFiles> = {}

function listen(s: Server): Promise<number> {
  return new Promise((resolve) => s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port)))
}

/** An intermediate CA under the partner root, with the root's CRL as its distribution point. */
function intermediate(name: string): CaFiles {
  const files = pki.leaf(name, root, {
    subject: `/CN=${name}/O=Portcullis Test`,
    eku: '',
    keyUsage: 'critical,keyCertSign,cRLSign',
    extraExtensions: `basicConstraints=critical,CA:TRUE,pathlen:0\ncrlDistributionPoints=URI:${cdpBase}/root.crl\n`,
  })
  return { cert: files.cert, key: files.key, name }
}

/** A client leaf of `ca` naming the given CRL path and/or OCSP responder. */
function leaf(name: string, opts: { crl?: string; ocsp?: string; ca?: CaFiles }): CertFiles {
  const ca = opts.ca ?? issuing
  const ext = [opts.crl ? `crlDistributionPoints=URI:${opts.crl}` : '', opts.ocsp ? `authorityInfoAccess=OCSP;URI:${opts.ocsp}` : ''].filter(Boolean).join('\n')
  return pki.client(name, ca, { extraExtensions: ext ? `${ext}\n` : undefined }, [{ ...ca }])
}

function gatewayYaml(revocation: string, clientAuthExtra = ''): string {
  return `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth:
        trustBundle: [{ file: ${root.cert} }]
        ${clientAuthExtra}
        revocation: ${revocation}
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: r
    match: { path: { prefix: / } }
    access: { allowAnyClientCert: true }
    upstream: app
`
}

function call(gw: TestGateway, c: CertFiles, http2 = false): Promise<Outcome> {
  return attempt({ port: gw.port(), ca: gwRoot.cert, cert: c.chain, key: c.key, path: '/x', http2 }, 15_000)
}

function handshakeLogs(gw: TestGateway, reason: string) {
  return gw.logs.filter((l) => l.type === 'handshake' && l.reason === reason)
}

async function metricValue(registry: Registry, name: string, labels: Record<string, string>): Promise<number> {
  const m = registry.getSingleMetric(name)
  if (!m) return 0
  const { values } = await m.get()
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0)
}

before(async () => {
  cdp = createServer((req, res) => {
    const path = req.url ?? ''
    fetches.set(path, (fetches.get(path) ?? 0) + 1)
    const body = served.get(path)
    if (!body) res.writeHead(404).end()
    else res.writeHead(200, { 'content-type': 'application/pkix-crl', 'content-length': body.length }).end(body)
  })
  cdpBase = `http://127.0.0.1:${await listen(cdp)}`
  const dead = createServer()
  deadBase = `http://127.0.0.1:${await listen(dead)}`
  await new Promise((resolve) => dead.close(resolve))

  issuing = intermediate('partner-issuing')
  issuingCa = new PartnerCa(pki, issuing)
  issuing2 = intermediate('partner-issuing-2')
  new PartnerCa(pki, issuing2)
  ocsp = await startOcspResponder(issuingCa, 5)
  upstream = await startUpstream()

  const crl = `${cdpBase}/issuing.crl`
  leaves.alice = leaf('alice', { crl })
  leaves.bob = leaf('bob', { crl })
  leaves.frank = leaf('frank', { crl })
  leaves.oscar = leaf('oscar', { ocsp: ocsp.url })
  leaves.olga = leaf('olga', { ocsp: ocsp.url })
  leaves.dora = leaf('dora', { crl: `${deadBase}/issuing.crl`, ocsp: `${deadBase}/ocsp` })
  leaves.ed = leaf('ed', { crl: `${cdpBase}/expired/issuing.crl` })
  leaves.fay = leaf('fay', { crl: `${cdpBase}/forged/issuing.crl` })
  leaves.carol = leaf('carol', { crl: `${cdpBase}/short/issuing.crl` })
  leaves.ulf = leaf('ulf', { crl: `${cdpBase}/issuing-2.crl`, ca: issuing2 })

  issuingCa.revoke(leaves.bob.cert, 'keyCompromise')
  issuingCa.revoke(leaves.frank.cert, 'affiliationChanged')
  issuingCa.revoke(leaves.olga.cert, 'keyCompromise')
  rootCa.revoke(issuing2.cert, 'cACompromise')
  await ocsp.restart() // the responder reads the index with the revocations

  served.set('/root.crl', rootCa.crl({ seconds: 86_400 }))
  served.set('/issuing.crl', issuingCa.crl({ seconds: 86_400 }))
  served.set('/issuing-2.crl', new PartnerCa(pki, issuing2).crl({ seconds: 86_400 }))
  served.set('/expired/issuing.crl', issuingCa.crl({ lastUpdate: new Date(Date.now() - 2 * 86_400_000), nextUpdate: new Date(Date.now() - 86_400_000) }))
  // Same issuer name, another key: a root of that name made in another PKI.
  const impostorPki = new TestPki()
  const impostor = impostorPki.root('partner-issuing')
  served.set('/forged/issuing.crl', new PartnerCa(impostorPki, impostor).crl({ seconds: 86_400 }))
})

after(async () => {
  await new Promise((resolve) => cdp?.close(resolve))
  await ocsp?.close()
  await upstream?.close()
})

describe('CRLs from distribution points', () => {
  let gw: TestGateway
  const metrics = new Registry()
  before(async () => {
    gw = await startGateway({ metrics, yaml: gatewayYaml('{ ocsp: false }') })
  })
  after(() => gw?.close())

  test('admits a good certificate, fetching each CRL of the chain once', T, async () => {
    const before = fetches.get('/issuing.crl') ?? 0
    const first = await call(gw, leaves.alice!)
    assert.equal(first.kind === 'response' && first.res.status, 200)
    assert.equal((await call(gw, leaves.alice!, true)).kind === 'response', true, 'again over HTTP/2, from the cache')
    assert.equal((fetches.get('/issuing.crl') ?? 0) - before, 1)
    assert.equal(fetches.get('/root.crl') ?? 0, 1, 'the intermediate is checked against the root CRL')
    assert.equal(await metricValue(metrics, 'portcullis_revocation_checks_total', { source: 'crl', result: 'good' }), 4)
    const nextUpdate = await metricValue(metrics, 'portcullis_revocation_crl_next_update_seconds', { url: `${cdpBase}/issuing.crl` })
    assert.ok(nextUpdate > 86_000 && nextUpdate <= 86_400, String(nextUpdate))
  })

  test('refuses a certificate its CA revoked on the distribution point CRL', T, async () => {
    const forwarded = upstream.requests.length
    const out = await call(gw, leaves.bob!)
    assert.equal(out.kind, 'closed')
    const log = handshakeLogs(gw, 'cert_revoked').at(-1)
    assert.match(String(log?.detail), new RegExp(`revoked at .* \\(keyCompromise\\) per CRL at ${cdpBase}/issuing.crl`))
    assert.equal(upstream.requests.length, forwarded, 'nothing reached the upstream')
  })

  test('refuses every leaf of an intermediate CA revoked on the root CRL', T, async () => {
    assert.equal((await call(gw, leaves.ulf!)).kind, 'closed')
    assert.match(String(handshakeLogs(gw, 'cert_revoked').at(-1)?.detail), /^CA O=Portcullis Test,CN=partner-issuing-2: .*\(cACompromise\) per CRL at .*\/root\.crl/)
  })

  test('does not trust an expired CRL: the status is unknown, never good', T, async () => {
    assert.equal((await call(gw, leaves.ed!)).kind, 'closed')
    assert.match(String(handshakeLogs(gw, 'cert_revocation_unknown').at(-1)?.detail), /expired at .*nextUpdate/)
  })

  test('rejects a CRL signed by another key than the issuing CA', T, async () => {
    assert.equal((await call(gw, leaves.fay!)).kind, 'closed')
    assert.match(String(handshakeLogs(gw, 'cert_revocation_unknown').at(-1)?.detail), /forged\/issuing\.crl signature does not verify with the key of O=Portcullis Test,CN=partner-issuing/)
    assert.equal(await metricValue(metrics, 'portcullis_revocation_crl_fetch_failures_total', { url: `${cdpBase}/forged/issuing.crl` }), 1)
  })
})

test('refuses a certificate revoked in a CRL file', T, async () => {
  const dir = join(pki.dir, 'files')
  const { mkdirSync, writeFileSync } = await import('node:fs')
  mkdirSync(dir, { recursive: true })
  writeFileSync(join(dir, 'issuing.crl'), issuingCa.crl({ seconds: 3600 }))
  writeFileSync(join(dir, 'root.crl'), rootCa.crl({ seconds: 3600 }))
  const gw = await startGateway({ dir, yaml: gatewayYaml('{ crlFiles: [{ file: issuing.crl }, { file: root.crl }], crlDistributionPoints: false, ocsp: false }') })
  try {
    const before = fetches.get('/issuing.crl') ?? 0
    assert.equal((await call(gw, leaves.frank!)).kind, 'closed')
    assert.match(String(handshakeLogs(gw, 'cert_revoked').at(-1)?.detail), /\(affiliationChanged\) per CRL file issuing\.crl/)
    const ok = await call(gw, leaves.alice!)
    assert.equal(ok.kind === 'response' && ok.res.status, 200)
    assert.equal(fetches.get('/issuing.crl') ?? 0, before, 'no distribution point was fetched')
  } finally {
    await gw.close()
  }
})

describe('OCSP', () => {
  let gw: TestGateway
  const metrics = new Registry()
  before(async () => {
    gw = await startGateway({ metrics, yaml: gatewayYaml('{ prefer: ocsp }') })
  })
  after(() => gw?.close())

  test('admits a certificate the responder says is good, and caches the answer', T, async () => {
    const first = await call(gw, leaves.oscar!, true)
    assert.equal(first.kind === 'response' && first.res.status, 200)
    const second = await call(gw, leaves.oscar!)
    assert.equal(second.kind === 'response' && second.res.status, 200)
    assert.equal(await metricValue(metrics, 'portcullis_revocation_ocsp_cache_misses_total', {}), 1)
    assert.equal(await metricValue(metrics, 'portcullis_revocation_ocsp_cache_hits_total', {}), 1)
    assert.equal(await metricValue(metrics, 'portcullis_revocation_checks_total', { source: 'ocsp', result: 'good' }), 2)
  })

  test('refuses a certificate the responder says is revoked', T, async () => {
    assert.equal((await call(gw, leaves.olga!)).kind, 'closed')
    assert.match(String(handshakeLogs(gw, 'cert_revoked').at(-1)?.detail), new RegExp(`\\(keyCompromise\\) per OCSP responder ${ocsp.url}`))
  })
})

describe('sources down', () => {
  test('hard fail refuses with cert_revocation_unknown and names the unreachable sources', T, async () => {
    const gw = await startGateway({ yaml: gatewayYaml('{ failMode: hard, fetchTimeout: 2s }', 'rejectWithProblem: true') })
    try {
      const forwarded = upstream.requests.length
      const out = await call(gw, leaves.dora!)
      assert.equal(out.kind, 'response')
      if (out.kind !== 'response') return
      assert.equal(out.res.status, 403)
      assert.equal(out.res.json().reason, 'cert_revocation_unknown')
      const detail = String(handshakeLogs(gw, 'cert_revocation_unknown').at(-1)?.detail)
      assert.match(detail, new RegExp(`CRL at ${deadBase}/issuing.crl unreachable: ECONNREFUSED`))
      assert.match(detail, /OCSP unreachable: .*ECONNREFUSED/)
      assert.equal(upstream.requests.length, forwarded, 'nothing reached the upstream')
    } finally {
      await gw.close()
    }
  })

  test('soft fail admits, logs the cause once and counts every admission', T, async () => {
    const metrics = new Registry()
    const gw = await startGateway({ metrics, yaml: gatewayYaml('{ failMode: soft, fetchTimeout: 2s }') })
    try {
      for (let i = 0; i < 2; i++) {
        const out = await call(gw, leaves.dora!)
        assert.equal(out.kind === 'response' && out.res.status, 200)
      }
      assert.equal(await metricValue(metrics, 'portcullis_revocation_soft_fail_total', { trust: 'default' }), 2)
      const warnings = gw.events.filter((e) => e.msg === 'client certificate admitted without a revocation status (failMode soft)')
      assert.equal(warnings.length, 1, JSON.stringify(warnings))
      assert.match(String(warnings[0]!.cause), /unreachable/)
    } finally {
      await gw.close()
    }
  })
})

test('a reload keeps fetched CRLs, re-reads CRL files and closes connections a new file revokes', T, async () => {
  const { mkdirSync, writeFileSync } = await import('node:fs')
  const dir = join(pki.dir, 'reload')
  mkdirSync(dir, { recursive: true })
  const reloadRoot = pki.root('reload-root')
  const reloadCa = new PartnerCa(pki, reloadRoot)
  const xena = pki.client('xena', reloadRoot)
  writeFileSync(join(dir, 'reload-root.crl'), reloadCa.crl({ seconds: 3600 }))
  // Two partners: the reload CA by file, the partner root by distribution point.
  const yaml = gatewayYaml('{ ocsp: false }', `perServerName: [{ serverNames: [xena.example], trustBundle: [{ file: ${reloadRoot.cert} }], revocation: { crlFiles: [{ file: reload-root.crl }], crlDistributionPoints: false, ocsp: false } }]`)
  const gw = await startGateway({ dir, yaml })
  const agent = new Agent({ connections: 1, connect: { ca: readFileSync(gwRoot.cert), cert: readFileSync(xena.chain), key: readFileSync(xena.key), servername: 'xena.example', checkServerIdentity: () => undefined } })
  try {
    const res = await request(`https://127.0.0.1:${gw.port()}/x`, { dispatcher: agent, headers: { host: 'xena.example' } })
    await res.body.text()
    assert.equal(res.statusCode, 200)
    assert.equal((await call(gw, leaves.alice!)).kind, 'response')
    const fetched = fetches.get('/issuing.crl')

    reloadCa.revoke(xena.cert, 'cessationOfOperation')
    writeFileSync(join(dir, 'reload-root.crl'), reloadCa.crl({ seconds: 3600 }))
    assert.equal((await gw.reload(yaml)).ok, true)
    const closed = () => handshakeLogs(gw, 'cert_revoked').some((l) => /cessationOfOperation\) per CRL file reload-root\.crl; established connection closed/.test(String(l.detail)))
    assert.ok(await waitFor(closed, 5000), 'the established connection was closed after the reload')
    await assert.rejects(request(`https://127.0.0.1:${gw.port()}/x`, { dispatcher: agent, headers: { host: 'xena.example' } }).then((r) => r.body.text()))
    assert.equal((await call(gw, leaves.alice!)).kind, 'response')
    assert.equal(fetches.get('/issuing.crl'), fetched, 'the distribution point CRL was kept across the reload')
  } finally {
    await agent.destroy()
    await gw.close()
  }
})

/** A TLS 1.3 connection (optionally resuming `session`): whether it resumed and was answered 200. */
function handshake(gw: TestGateway, c: CertFiles, session?: Buffer): Promise<{ session: Buffer | undefined; isResumed: boolean; answered: boolean }> {
  return new Promise((resolve, reject) => {
    let ticket: Buffer | undefined
    const socket: TLSSocket = connect({
      host: '127.0.0.1', port: gw.port(), servername: 'localhost', ALPNProtocols: ['http/1.1'], session, minVersion: 'TLSv1.3',
      ca: readFileSync(gwRoot.cert), cert: readFileSync(c.chain), key: readFileSync(c.key),
    })
    socket.on('session', (s: Buffer) => (ticket = s))
    socket.once('secureConnect', () => {
      const isResumed = socket.isSessionReused()
      socket.write('GET /x HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n')
      let text = ''
      socket.on('data', (d: Buffer) => (text += d.toString()))
      socket.once('close', () => resolve({ session: ticket, isResumed, answered: text.startsWith('HTTP/1.1 200') }))
    })
    socket.once('error', (err) => (socket.destroyed ? undefined : reject(err)))
  })
}

test('a refreshed CRL closes the established connection and refuses new and resumed TLS 1.3 handshakes', T, async () => {
  served.set('/short/issuing.crl', issuingCa.crl({ seconds: 4 }))
  const gw = await startGateway({ yaml: gatewayYaml('{ ocsp: false, refreshBeforeNextUpdate: 2s }') })
  const agent = new Agent({ connections: 1, connect: { ca: readFileSync(gwRoot.cert), cert: readFileSync(leaves.carol!.chain), key: readFileSync(leaves.carol!.key), servername: 'localhost' } })
  try {
    const res = await request(`https://127.0.0.1:${gw.port()}/x`, { dispatcher: agent })
    await res.body.text()
    assert.equal(res.statusCode, 200)
    const first = await handshake(gw, leaves.carol!)
    assert.ok(first.answered)
    await waitFor(() => first.session !== undefined)
    assert.ok(first.session, 'a session ticket was issued')

    issuingCa.revoke(leaves.carol!.cert, 'superseded')
    served.set('/short/issuing.crl', issuingCa.crl({ seconds: 3600 }))
    const closed = () => handshakeLogs(gw, 'cert_revoked').some((l) => String(l.detail).includes('established connection closed'))
    assert.ok(await waitFor(closed, 8000), 'the background refresh closed the established connection')

    await assert.rejects(request(`https://127.0.0.1:${gw.port()}/x`, { dispatcher: agent }).then((r) => r.body.text()))
    const resumed = await handshake(gw, leaves.carol!, first.session)
    assert.equal(resumed.isResumed, true, 'the TLS 1.3 session was resumed')
    assert.equal(resumed.answered, false, 'and refused')
  } finally {
    await agent.destroy()
    await gw.close()
  }
})

/** The longest event-loop delay while `work` runs, and how long the loop was busy (event-loop utilisation), in ms. */
async function longestStall(work: () => Promise<unknown>): Promise<{ maxMs: number; p99Ms: number; wallMs: number; busyMs: number }> {
  const delay = monitorEventLoopDelay({ resolution: 5 })
  delay.enable()
  const started = performance.now()
  const elu = performance.eventLoopUtilization()
  await work()
  const busyMs = performance.eventLoopUtilization(elu).active
  const wallMs = performance.now() - started
  delay.disable()
  return { maxMs: delay.max / 1e6, p99Ms: delay.percentile(99) / 1e6, wallMs, busyMs }
}

test('a 100k-entry CRL loads without stalling the event loop', { timeout: 90_000 }, async (t) => {
  const bulkRoot = pki.root('bulk-root')
  const bulk = new PartnerCa(pki, bulkRoot)
  // Two distribution points with the same CRL: two independent loads, measured apart.
  const hank = leaf('hank', { crl: `${cdpBase}/bulk.crl`, ca: bulkRoot })
  const hugo = leaf('hugo', { crl: `${cdpBase}/bulk-2.crl`, ca: bulkRoot })
  const ivan = leaf('ivan', { crl: `${cdpBase}/bulk.crl`, ca: bulkRoot })
  bulk.revoke(ivan.cert, 'keyCompromise')
  bulk.addRevokedSerials(100_000)
  const der = bulk.crl({ seconds: 86_400 })
  served.set('/bulk.crl', der)
  served.set('/bulk-2.crl', der)
  const yaml = gatewayYaml('{ ocsp: false }').replace(`trustBundle: [{ file: ${root.cert} }]`, `trustBundle: [{ file: ${bulkRoot.cert} }]`)
  const gw = await startGateway({ yaml })
  try {
    const runs = []
    for (const c of [hank, hugo]) {
      let out: Outcome | undefined
      runs.push(await longestStall(async () => (out = await call(gw, c))))
      assert.equal(out?.kind === 'response' && out.res.status, 200)
    }
    const idle = await longestStall(() => new Promise((resolve) => setTimeout(resolve, 1000)))
    for (const [i, r] of runs.entries()) {
      t.diagnostic(`load ${i + 1}: CRL ${der.length} bytes, 100001 entries; first request ${r.wallMs.toFixed(0)} ms, event loop busy ${r.busyMs.toFixed(0)} ms of it; event-loop delay max ${r.maxMs.toFixed(1)} ms, p99 ${r.p99Ms.toFixed(1)} ms`)
    }
    t.diagnostic(`idle 1 s on this machine: event-loop delay max ${idle.maxMs.toFixed(1)} ms`)
    // Work on the event loop stalls every load alike; the OS descheduling this process on a busy machine does not, so the better of two loads is judged.
    const best = Math.min(...runs.map((r) => r.maxMs))
    assert.ok(best < 100, `event loop stalled ${best.toFixed(1)} ms in both loads`)
    assert.equal((await call(gw, ivan)).kind, 'closed', 'a serial among the 100k is revoked')
  } finally {
    await gw.close()
  }
})
