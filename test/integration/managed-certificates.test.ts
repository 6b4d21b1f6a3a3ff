/**
 * Managed certificates end to end: a CA made by initCa, a gateway whose
 * listener certificate and key are managed files that do not exist yet,
 * ensureManagedCertificates creating them, a real TLS client and `openssl
 * verify` judging what is served, then a renewal at two-thirds of the
 * lifetime hot-swapped with `gateway.reload()` under load: new handshakes get
 * the new certificate, a keep-alive connection opened before keeps working,
 * and no request fails. The PKI service's tick path (renew → onRenewed) is
 * checked with the same pinned clock.
 *
 * The clock starts 21 days in the past, so both the first certificate
 * (issued "then") and the renewed one (issued "now") are valid for TLS
 * clients and openssl, which use the wall clock.
 */
import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { readFileSync, statSync } from 'node:fs'
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent } from 'undici'
import { pkiSchema, type PkiConfig } from '../../src/config/schema/pki.js'
import { ensureManagedCertificates, whyRenew, type ManagedCertificateDeps } from '../../src/control/managed-certificates.js'
import { MANAGED_CHECK_INTERVAL_MS, startPkiService } from '../../src/control/pki-service.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import { FixedClock } from '../../src/shared/clock.js'
import { openSqliteStorage, type SqliteStorage } from '../../src/storage/sqlite.js'
import { waitFor } from '../harness/client.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { startLoad, type LoadResult } from '../harness/load.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { newCa, openssl, passphrase, put } from './pki-helpers.js'

const DAY_MS = 86_400_000
const env = { PKI_PASSPHRASE: passphrase }

const pkiSection = (extra = '') => `
pki:
  caDir: ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: inventory.sqlite }
  revocationSync: 100ms
  managedCertificates:
    - name: gateway-server
      profile: server
      subject: CN=localhost, O=Portcullis Test
      sans: [DNS:localhost, IP:127.0.0.1]
      validity: 30d
      certFile: certs/server.pem
      keyFile: certs/server.key
${extra}`

let ca: LoadedCa
let work: string
let clock: FixedClock
let rootFile: string
let cfg: PkiConfig
let storage: SqliteStorage
let harnessRoot: CaFiles
let client: CertFiles
let upstream: TestUpstream
const events: LogLine[] = []
const log = pino(
  { level: 'info' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) events.push(JSON.parse(line) as LogLine)
      done()
    },
  }),
)

function deps(): ManagedCertificateDeps {
  return { ca, inventory: storage.inventory, source: { baseDir: work, env }, clock, log }
}

/** SHA-256 fingerprint (openssl style) of the first certificate in a PEM file. */
function fileFingerprint(path: string): string {
  return new X509Certificate(readFileSync(path)).fingerprint256
}

/** The certificate a fresh, verifying handshake gets (client certificate from the openssl-made harness PKI). */
function servedFingerprint(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(rootFile), cert: readFileSync(client.chain), key: readFileSync(client.key) })
    socket.once('secureConnect', () => {
      resolve(socket.getPeerCertificate().fingerprint256)
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

function gatewayYaml(): string {
  return `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: certs/server.pem }, key: { file: certs/server.key } }]
      clientAuth: { trustBundle: [{ file: ${harnessRoot.cert} }] }
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: load
    match: { path: { prefix: /load } }
    access: { allowAnyClientCert: true }
    upstream: app
${pkiSection()}`
}

before(async () => {
  clock = new FixedClock(Date.now() - 21 * DAY_MS)
  ;({ ca, work } = await newCa({ clock }))
  rootFile = put(work, 'root-only.crt', ca.root.toString('pem'))
  const harness = new TestPki()
  harnessRoot = harness.root('client-root')
  client = harness.client('loader', harnessRoot)
  upstream = await startUpstream()
  storage = openSqliteStorage({ path: join(work, 'inventory.sqlite'), clock })
})

after(async () => {
  await storage?.close()
  await upstream?.close()
})

describe('a listener served from managed certificate files', { timeout: 90_000 }, () => {
  let gw: TestGateway

  after(async () => {
    await gw?.close()
  })

  test('creates the missing files, serves them, and renews at two-thirds under load with zero failed requests', async () => {
    const yaml = gatewayYaml()
    cfg = pkiSchema.parse({
      caDir: 'ca',
      passphrase: { env: 'PKI_PASSPHRASE' },
      inventory: { sqlite: 'inventory.sqlite' },
      managedCertificates: [
        { name: 'gateway-server', profile: 'server', subject: 'CN=localhost, O=Portcullis Test', sans: ['DNS:localhost', 'IP:127.0.0.1'], certFile: 'certs/server.pem', keyFile: 'certs/server.key' },
      ],
    })
    const certFile = join(work, 'certs/server.pem')
    const keyFile = join(work, 'certs/server.key')

    // 1. A fresh install: the gateway cannot start before the files exist.
    await assert.rejects(startGateway({ yaml, dir: work, env }), /server\.pem/)
    assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), 'missing')
    const first = await ensureManagedCertificates(cfg, deps())
    assert.deepEqual(first, { renewed: ['gateway-server'], failed: [] })
    assert.equal(statSync(keyFile).mode & 0o777, 0o600, 'key file is 0600')
    const intermediateFile = put(work, 'intermediate-only.crt', ca.intermediate.toString('pem'))
    const verified = openssl(['verify', '-CAfile', rootFile, '-untrusted', certFile, certFile])
    assert.equal(verified.status, 0, verified.stderr + verified.stdout)
    const pem = readFileSync(certFile, 'utf8')
    assert.equal(pem.match(/-----BEGIN CERTIFICATE-----/g)?.length, 2, 'leaf + intermediate')
    assert.equal(new X509Certificate(pem.slice(pem.indexOf('-----BEGIN', 1))).fingerprint256, fileFingerprint(intermediateFile))
    const oldFingerprint = fileFingerprint(certFile)
    const inventoried = await storage.inventory.list()
    assert.ok(inventoried.some((r) => r.subject === 'CN=localhost, O=Portcullis Test' && r.profile === 'server'), 'recorded in the inventory')

    // A second pass changes nothing.
    assert.deepEqual(await ensureManagedCertificates(cfg, deps()), { renewed: [], failed: [] })
    assert.equal(fileFingerprint(certFile), oldFingerprint)

    // 2. The gateway serves the managed certificate.
    gw = await startGateway({ yaml, dir: work, env })
    const port = gw.port()
    assert.equal(await servedFingerprint(port), oldFingerprint)

    // A keep-alive connection opened before the renewal.
    const keepAlive = new HttpsAgent({ keepAlive: true, maxSockets: 1, ca: readFileSync(rootFile), cert: readFileSync(client.chain), key: readFileSync(client.key), servername: 'localhost' })
    const viaKeepAlive = () =>
      new Promise<{ status: number; reused: boolean; peer: string }>((resolve, reject) => {
        const req = httpsRequest({ host: '127.0.0.1', port, path: '/load/keep', agent: keepAlive, servername: 'localhost' }, (res) => {
          const peer = (res.socket as import('node:tls').TLSSocket).getPeerCertificate().fingerprint256
          res.resume()
          res.on('end', () => resolve({ status: res.statusCode ?? 0, reused: req.reusedSocket, peer }))
        })
        req.on('error', reject)
        req.end()
      })
    const opened = await viaKeepAlive()
    assert.equal(opened.status, 200)
    assert.equal(opened.peer, oldFingerprint)

    // 3. Load across the renewal.
    const agent = new Agent({ connections: 8, connect: { ca: readFileSync(rootFile), cert: readFileSync(client.chain), key: readFileSync(client.key), servername: 'localhost' } })
    const load = startLoad({ url: `https://127.0.0.1:${port}/load/x`, dispatcher: agent, workers: 12 })
    let result: LoadResult | undefined
    try {
      await new Promise((r) => setTimeout(r, 300))

      // Just before two-thirds: nothing to do. Past it (21 of 30 days): renewed.
      clock.set(Date.now() - DAY_MS - 10 * 60_000)
      assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), undefined)
      clock.set(Date.now())
      assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), 'renewal_due')
      assert.deepEqual(await ensureManagedCertificates(cfg, deps()), { renewed: ['gateway-server'], failed: [] })
      const newFingerprint = fileFingerprint(certFile)
      assert.notEqual(newFingerprint, oldFingerprint, 'a new certificate on disk')
      assert.equal(openssl(['verify', '-CAfile', rootFile, '-untrusted', certFile, certFile]).status, 0)
      assert.equal(statSync(keyFile).mode & 0o777, 0o600)

      // Until the reload, the old certificate keeps serving.
      assert.equal(await servedFingerprint(port), oldFingerprint)
      const reloaded = await gw.gateway.reload()
      assert.ok(reloaded.ok, JSON.stringify(reloaded))
      assert.equal(await servedFingerprint(port), newFingerprint, 'new handshakes get the renewed certificate')

      const again = await viaKeepAlive()
      assert.equal(again.status, 200, 'the connection opened before the renewal still works')
      assert.equal(again.reused, true, 'on the same socket')
      assert.equal(again.peer, oldFingerprint, 'which still holds the old certificate')
      await new Promise((r) => setTimeout(r, 300))
    } finally {
      result = await load.stop()
      await agent.close()
      keepAlive.destroy()
    }
    assert.deepEqual(result.failures, [], 'no request failed across the renewal')
    assert.ok(result.ok > 20, `load ran (${result.ok} requests)`)
    assert.equal((await storage.inventory.list()).filter((r) => r.subject === 'CN=localhost, O=Portcullis Test').length, 2)
    assert.ok(!JSON.stringify(events).includes('PRIVATE KEY'), 'no key material in the logs')
  })
})

describe('the PKI service tick', { timeout: 30_000 }, () => {
  test('renews a due managed certificate at most once per interval, calls onRenewed, and retries a refused swap', async () => {
    const svcCfg = pkiSchema.parse({
      caDir: 'ca',
      passphrase: { env: 'PKI_PASSPHRASE' },
      inventory: { sqlite: 'inventory.sqlite' },
      revocationSync: '50ms',
      managedCertificates: [
        { name: 'upstream-client', profile: 'client', subject: 'CN=gateway, O=Portcullis Test', sans: ['DNS:gateway.test'], validity: '3d', certFile: 'certs/client.pem', keyFile: 'certs/client.key' },
      ],
    })
    const serviceClock = new FixedClock(Date.now())
    const calls: (readonly string[])[] = []
    const service = await startPkiService(svcCfg, {
      source: { baseDir: work, env },
      clock: serviceClock,
      log,
      revocation: new RevocationSet(),
      onRenewed: (renewed) => {
        calls.push(renewed)
        return calls.length !== 1 // the first swap is "refused"
      },
    })
    try {
      // Before the first interval nothing is checked, although the files are missing.
      await new Promise((r) => setTimeout(r, 300))
      assert.deepEqual(calls, [])
      serviceClock.advance(MANAGED_CHECK_INTERVAL_MS)
      assert.ok(await waitFor(() => calls.length === 1, 5000), 'missing files issued on the tick')
      assert.deepEqual(calls[0], ['upstream-client'])
      const fp = fileFingerprint(join(work, 'certs/client.pem'))
      // The refused swap is retried at the next interval, without issuing again.
      serviceClock.advance(MANAGED_CHECK_INTERVAL_MS)
      assert.ok(await waitFor(() => calls.length === 2, 5000), 'swap retried')
      assert.deepEqual(calls[1], ['upstream-client'])
      assert.equal(fileFingerprint(join(work, 'certs/client.pem')), fp)
      // Two-thirds of 3 days is 2 days: a day later, nothing; past 2 days, renewed once.
      serviceClock.advance(DAY_MS)
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(calls.length, 2, 'accepted swap is not repeated; nothing due yet')
      serviceClock.advance(DAY_MS + 10 * 60_000)
      assert.ok(await waitFor(() => calls.length === 3, 5000), 'renewed on the tick')
      assert.notEqual(fileFingerprint(join(work, 'certs/client.pem')), fp)
      await new Promise((r) => setTimeout(r, 300))
      assert.equal(calls.length, 3, 'no second renewal within the interval')
    } finally {
      await service.close()
    }
  })
})
