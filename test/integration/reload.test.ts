/**
 * Reload under traffic: concurrent keep-alive clients run while certificates,
 * trust and routes are swapped several times and an invalid config is
 * offered. Zero requests may fail; the invalid config must leave the running
 * one serving; new handshakes must see the new certificate.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { connect } from 'node:tls'
import { after, before, test } from 'node:test'
import { Agent, request } from 'undici'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { startLoad } from '../harness/load.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'

let pki: TestPki
let root: CaFiles
let client: CertFiles
let servers: CertFiles[]
let upstream: TestUpstream
let gw: TestGateway

function config(serverCert: CertFiles, extraRoute: boolean, port: number): string {
  return `
version: 1
listeners:
  - name: main
    port: ${port}
    tls:
      certificates:
        - cert: { file: ${serverCert.chain} }
          key: { file: ${serverCert.key} }
      clientAuth:
        trustBundle: [{ file: ${root.cert} }]
upstreams:
  app:
    targets: [{ url: ${upstream.url} }]
routes:
  - name: load
    match: { path: { prefix: /load } }
    access: { allowAnyClientCert: true }
    upstream: app
${extraRoute ? `  - name: added
    match: { path: { prefix: /added } }
    access: { allowAnyClientCert: true }
    upstream: app
` : ''}`
}

/** SHA-256 fingerprint of the certificate a fresh handshake gets. */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: '127.0.0.1',
      port,
      servername: 'localhost',
      ca: readFileSync(root.cert),
      cert: readFileSync(client.chain),
      key: readFileSync(client.key),
    })
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

before(async () => {
  pki = new TestPki()
  root = pki.root('root')
  client = pki.client('loader', root)
  servers = [0, 1, 2, 3].map((i) => pki.server(`gateway-${i}`, root))
  upstream = await startUpstream()
  gw = await startGateway({ yaml: config(servers[0]!, false, 0) })
})

after(async () => {
  await gw?.close()
  await upstream?.close()
})

test('swaps certificates and routes under load with zero failed requests', { timeout: 60_000 }, async () => {
  const port = gw.port()
  const agent = new Agent({
    connections: 8,
    connect: {
      ca: readFileSync(root.cert),
      cert: readFileSync(client.chain),
      key: readFileSync(client.key),
      servername: 'localhost',
    },
  })
  const load = startLoad({ url: `https://127.0.0.1:${port}/load/x`, dispatcher: agent, workers: 16 })

  await new Promise((r) => setTimeout(r, 300))
  for (let i = 1; i < servers.length; i++) {
    const result = await gw.reload(config(servers[i]!, i % 2 === 1, port))
    assert.ok(result.ok, `reload ${i} applied`)
    const expected = new X509Certificate(readFileSync(servers[i]!.cert)).fingerprint256
    assert.equal(await servedFingerprint(port), expected, 'new handshakes get the new certificate')
    await new Promise((r) => setTimeout(r, 300))
  }

  const refused = await gw.reload('version: 1\nlisteners: [ { name: main, port: nope } ]\n')
  assert.equal(refused.ok, false, 'invalid config refused')
  await new Promise((r) => setTimeout(r, 300))

  const { ok, failures } = await load.stop()
  await agent.close()

  assert.deepEqual(failures, [], 'no request failed during reloads')
  assert.ok(ok > 50, `load ran (${ok} requests)`)
  // The last applied config (servers[3], no extra route) still serves after the refused one.
  const last = new X509Certificate(readFileSync(servers[3]!.cert)).fingerprint256
  assert.equal(await servedFingerprint(port), last)
})

test('reload() picks up rotated certificate files; a broken file keeps the running certificate', { timeout: 30_000 }, async () => {
  const { copyFileSync, writeFileSync: write } = await import('node:fs')
  const { join } = await import('node:path')
  const dir = pki.dir
  const live = { cert: join(dir, 'live.crt'), key: join(dir, 'live.key'), chain: join(dir, 'live.crt') }
  copyFileSync(servers[0]!.chain, live.cert)
  copyFileSync(servers[0]!.key, live.key)
  const own = await startGateway({ yaml: config(live, false, 0) })
  try {
    const port = own.port()
    const first = new X509Certificate(readFileSync(servers[0]!.cert)).fingerprint256
    assert.equal(await servedFingerprint(port), first)

    // Rotation: new files in place, then reload() re-reads them.
    copyFileSync(servers[1]!.chain, live.cert)
    copyFileSync(servers[1]!.key, live.key)
    assert.ok((await own.gateway.reload()).ok)
    const second = new X509Certificate(readFileSync(servers[1]!.cert)).fingerprint256
    assert.equal(await servedFingerprint(port), second)

    // A key that does not match its certificate is refused; the running pair keeps serving.
    copyFileSync(servers[2]!.key, live.key)
    const refused = await own.gateway.reload()
    assert.equal(refused.ok, false)
    assert.equal(await servedFingerprint(port), second)

    // A trust bundle that is not PEM is refused too.
    write(join(dir, 'live.key'), readFileSync(servers[1]!.key))
    const badBundle = join(dir, 'bad-bundle.pem')
    write(badBundle, 'not a certificate\n')
    const withBadBundle = config(live, false, port).replace(`trustBundle: [{ file: ${root.cert} }]`, `trustBundle: [{ file: ${badBundle} }]`)
    assert.equal((await own.reload(withBadBundle)).ok, false)
    assert.equal(await servedFingerprint(port), second, 'the last good trust and certificate keep serving')
  } finally {
    await own.close()
  }
})

test('stop() lets an in-flight request finish before closing', { timeout: 30_000 }, async () => {
  const slow = await startUpstream({
    handler: (_req, res) => {
      setTimeout(() => res.end('late but complete'), 800)
    },
  })
  const own = await startGateway({ yaml: config(servers[0]!, false, 0).replace(upstream.url, slow.url) })
  const agent = new Agent({ connect: { ca: readFileSync(root.cert), cert: readFileSync(client.chain), key: readFileSync(client.key), servername: 'localhost' } })
  try {
    const port = own.port()
    const inFlight = request(`https://127.0.0.1:${port}/load/slow`, { dispatcher: agent })
    await new Promise((r) => setTimeout(r, 200))
    const stopped = own.close()
    const res = await inFlight
    assert.equal(res.statusCode, 200)
    assert.equal(await res.body.text(), 'late but complete')
    await stopped
    await assert.rejects(servedFingerprint(port), 'no new connections after stop')
  } finally {
    await agent.close()
    await slow.close()
  }
})
