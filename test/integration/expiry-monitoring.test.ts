/**
 * Expiry monitoring end to end: a real gateway (listener chain, client trust
 * bundle, upstream client certificate and CA, all made by openssl), a
 * managed certificate and partner certificates from the built-in CA in a
 * SQLite inventory, the real PKI service, and a local HTTP server as the
 * webhook receiver. A pinned clock is moved across 30, 7 and 1 days and past
 * notAfter; after each move one check runs. Judged independently:
 * notAfter and serials by `openssl x509`, signatures by node:crypto.
 */
import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { copyFileSync, mkdirSync } from 'node:fs'
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { pkiSchema } from '../../src/config/schema/pki.js'
import { toInventoryRecord } from '../../src/control/inventory-record.js'
import { ensureManagedCertificatesAtStart, startPkiService, type PkiService } from '../../src/control/pki-service.js'
import { ISSUED_ANNOUNCEMENTS_PER_CHECK, startExpiryMonitor, type ExpiryMonitor } from '../../src/observability/expiry-monitor.js'
import { ISSUED_SERIES_LIMIT } from '../../src/observability/expiry-issued.js'
import { createMetricsRegistry, type Registry } from '../../src/observability/metrics.js'
import { issueCertificate } from '../../src/pki/ca-issue.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import { FixedClock } from '../../src/shared/clock.js'
import { openSqliteStorage, type SqliteStorage } from '../../src/storage/sqlite.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { TestPki } from '../harness/pki.js'
import { newCa, openssl, passphrase } from './pki-helpers.js'

const DAY = 86_400_000
const HOOK_SECRET = 'expiry-webhook-secret-0123456789abcdef'
const env = { PKI_PASSPHRASE: passphrase, HOOK_SECRET }

let work: string
let ca: LoadedCa
let clock: FixedClock
let T0: number
let storage: SqliteStorage
let service: PkiService
let gw: TestGateway
let monitor: ExpiryMonitor
let registry: Registry
let hookServer: Server
let hookUrl: string
/** Log lines before the monitor started. */
let beforeStart = 0
const hooks: { headers: IncomingHttpHeaders; body: string }[] = []
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

/** notAfter (ms) and serial (lower-case, no leading zeros) as openssl reads them. */
function judge(file: string): { notAfter: number; serial: string } {
  const r = openssl(['x509', '-in', file, '-noout', '-enddate', '-serial', '-dateopt', 'iso_8601'])
  assert.equal(r.status, 0, r.stderr)
  const end = /notAfter=(\S+) (\S+)/.exec(r.stdout)
  const serial = /serial=([0-9A-F]+)/.exec(r.stdout)
  assert.ok(end && serial, r.stdout)
  return { notAfter: Date.parse(`${end[1]}T${end[2]}`), serial: serial[1]!.toLowerCase().replace(/^0+(?=.)/, '') }
}

/** Files of the openssl-made PKI, judged. */
const files: Record<string, string> = {}
const judged: Record<string, { notAfter: number; serial: string }> = {}
/** Serials of the CA-issued certificates. */
const issued: Record<string, string> = {}

function yaml(thresholds = '[30d, 7d, 1d]', enabled = true): string {
  return `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: certs/server.pem }, key: { file: certs/server.key } }]
      clientAuth: { trustBundle: [{ file: ${files.clientRoot} }] }
upstreams:
  app:
    targets: [{ url: "https://127.0.0.1:9" }]
    tls: { ca: [{ file: ${files.upstreamRoot} }], cert: { file: ${files.upstreamClient} }, key: { file: ${files.upstreamClientKey} } }
routes:
  - name: all
    match: { path: { prefix: / } }
    access: { allowAnyClientCert: true }
    upstream: app
pki:
  caDir: ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: inventory.sqlite }
  managedCertificates:
    - { name: edge, profile: server, subject: "CN=edge, O=Portcullis Test", sans: ["DNS:edge.test"], validity: 20d, certFile: certs/edge.pem, keyFile: certs/edge.key }
expiryMonitoring:
  enabled: ${enabled}
  thresholds: ${thresholds}
  webhook: { url: "${hookUrl}", secret: { env: HOOK_SECRET }, timeout: 2s }
`
}

async function issue(name: string, subject: string, partner: string, validityMs: number, at: number): Promise<string> {
  const c = await issueCertificate(ca, { profile: 'partner', subject, partner, validityMs, plainKey: true, clock: new FixedClock(at) })
  await storage.inventory.add(toInventoryRecord(c.record))
  issued[name] = c.record.serial
  return c.record.serial
}

type Series = { kind: string; name: string; subject: string; serial: string; value: number }

async function seriesNow(): Promise<Series[]> {
  const m = await registry.getSingleMetric('portcullis_certificate_expiry_seconds')!.get()
  return m.values.map((v) => ({ ...(v.labels as Omit<Series, 'value'>), value: v.value }))
}

async function count(kind: string, name: string, within: string): Promise<number | undefined> {
  const m = await registry.getSingleMetric('portcullis_certificates_expiring')!.get()
  return m.values.find((v) => v.labels.kind === kind && v.labels.name === name && v.labels.within === within)?.value
}

/** The announcements logged since `from`: "serial step" pairs, step being the threshold or "expired". */
function announcedSince(from: number): string[] {
  return events
    .slice(from)
    .filter((e) => typeof e.event === 'string' && String(e.event).startsWith('certificate.'))
    .map((e) => `${e.serial} ${e.event === 'certificate.expired' ? 'expired' : e.threshold}`)
    .sort()
}

/** Moves the clock to T0 + `days`, checks once, waits for the webhook, and returns what was announced. */
async function checkAt(days: number): Promise<string[]> {
  clock.set(T0 + days * DAY)
  const from = events.length
  await monitor.check()
  await monitor.webhookIdle()
  return announcedSince(from)
}

before(async () => {
  // The CA and its first certificates live 30 days in the past, so a "renewed" partner certificate can exist.
  const past = new FixedClock(Date.now() - 30 * DAY)
  ;({ ca, work } = await newCa({ clock: past }))
  mkdirSync(join(work, 'certs'))
  const pki = new TestPki()
  const serverRoot = pki.root('server-root')
  const serverInt = pki.intermediate('server-int', serverRoot) // openssl's default: 30 days
  const leaf = pki.server('gw-server', serverInt, { notAfter: new Date(Date.now() + 45 * DAY) }, [serverInt])
  copyFileSync(leaf.chain, join(work, 'certs/server.pem'))
  copyFileSync(leaf.key, join(work, 'certs/server.key'))
  const clientRoot = pki.root('client-root')
  const upstreamRoot = pki.root('upstream-root')
  const upstreamClient = pki.client('gw-upstream-client', upstreamRoot, { notAfter: new Date(Date.now() + 200 * DAY) })
  Object.assign(files, { leaf: leaf.cert, intermediate: serverInt.cert, clientRoot: clientRoot.cert, upstreamRoot: upstreamRoot.cert, upstreamClient: upstreamClient.cert, upstreamClientKey: upstreamClient.key })
  for (const [name, file] of Object.entries(files)) if (name !== 'upstreamClientKey') judged[name] = judge(file)

  hookServer = createServer((req, res) => {
    let body = ''
    req.on('data', (c: Buffer) => (body += c.toString('utf8')))
    req.on('end', () => {
      hooks.push({ headers: req.headers, body })
      res.writeHead(204).end()
    })
  })
  await new Promise<void>((ok) => hookServer.listen(0, '127.0.0.1', ok))
  hookUrl = `http://127.0.0.1:${(hookServer.address() as AddressInfo).port}/hook`

  T0 = Date.now()
  clock = new FixedClock(T0)
  storage = openSqliteStorage({ path: join(work, 'inventory.sqlite'), clock })
  await issue('p1', 'CN=p1.acme.test, O=acme', 'acme', 20 * DAY, T0)
  await issue('p2old', 'CN=p2.acme.test, O=acme', 'acme', 20 * DAY, T0 - 10 * DAY)
  await issue('p2new', 'CN=p2.acme.test, O=acme', 'acme', 60 * DAY, T0 - DAY)
  await issue('p3revoked', 'CN=p3.acme.test, O=acme', 'acme', 15 * DAY, T0)
  await storage.inventory.revoke(issued.p3revoked!, 'superseded', T0)
  await issue('p4', 'CN=p4.globex.test, O=globex', 'globex', 60 * DAY, T0)

  const gatewayPki = pkiSchema.parse({ caDir: 'ca', passphrase: { env: 'PKI_PASSPHRASE' }, inventory: { sqlite: 'inventory.sqlite' }, managedCertificates: [
    { name: 'edge', profile: 'server', subject: 'CN=edge, O=Portcullis Test', sans: ['DNS:edge.test'], validity: '20d', certFile: 'certs/edge.pem', keyFile: 'certs/edge.key' },
  ] })
  await ensureManagedCertificatesAtStart(gatewayPki, { source: { baseDir: work, env }, clock, log })
  judged.managed = judge(join(work, 'certs/edge.pem'))
  // The service without managed certificates: its renewals would race the clock moves below.
  service = await startPkiService({ ...gatewayPki, managedCertificates: [] }, { source: { baseDir: work, env }, clock, log, revocation: new RevocationSet() })

  registry = createMetricsRegistry()
  gw = await startGateway({ yaml: yaml(), dir: work, clock, env, metrics: registry })
  beforeStart = events.length
  monitor = startExpiryMonitor({ current: () => gw.gateway.current(), source: { baseDir: work, env }, clock, log, metrics: registry, pki: service.expiryView })
})

after(async () => {
  await monitor?.close()
  await gw?.close()
  await service?.close()
  await storage?.close()
  hookServer?.closeAllConnections()
  await new Promise<void>((ok) => (hookServer ? hookServer.close(() => ok()) : ok()))
})

test('watches every certificate with metric values equal to notAfter - now, and announces each threshold once', { timeout: 60_000 }, async () => {
  const s = judged
  // Starting runs a first check. At T0 the intermediate (openssl's 30 days, made a moment before T0), the
  // managed certificate (20 d) and partner p1 (20 d) are inside 30 days.
  await monitor.check()
  await monitor.webhookIdle()
  assert.deepEqual(announcedSince(beforeStart), [`${s.intermediate!.serial} 30d`, `${s.managed!.serial} 30d`, `${issued.p1} 30d`].sort())

  const series = await seriesNow()
  const find = (kind: string, serial: string) => series.find((x) => x.kind === kind && x.serial === serial)
  for (const [kind, key] of [['listener_certificate', 'leaf'], ['listener_chain', 'intermediate'], ['client_trust_anchor', 'clientRoot'], ['upstream_ca', 'upstreamRoot'], ['upstream_client_certificate', 'upstreamClient'], ['managed_certificate', 'managed']] as const) {
    const found = find(kind, s[key]!.serial)
    assert.ok(found, `a ${kind} series for ${key}`)
    assert.equal(found.value, (s[key]!.notAfter - T0) / 1000, `${kind}: seconds to openssl's notAfter`)
  }
  assert.equal(find('listener_certificate', s.leaf!.serial)?.name, 'main')
  assert.equal(find('upstream_ca', s.upstreamRoot!.serial)?.name, 'app')
  assert.equal(find('managed_certificate', s.managed!.serial)?.name, 'edge')
  assert.equal(find('listener_certificate', s.leaf!.serial)?.subject, 'CN=gw-server')
  const caRoot = series.find((x) => x.kind === 'ca_root')
  assert.equal(caRoot?.value, (judge(join(work, 'ca', 'root.crt')).notAfter - T0) / 1000)
  assert.ok(series.some((x) => x.kind === 'ca_intermediate'), 'the CA intermediate is watched')
  // Issued: p1 and the managed one are within 30 days; the superseded, revoked and far ones have no series.
  assert.equal(find('issued', issued.p1!)?.name, 'acme')
  assert.equal(find('issued', s.managed!.serial)?.name, '(server)')
  for (const name of ['p2old', 'p2new', 'p3revoked', 'p4']) assert.equal(find('issued', issued[name]!), undefined, `${name} has no series`)
  assert.equal(await count('issued', 'acme', '30d'), 1)
  assert.equal(await count('issued', 'acme', '7d'), 0)
  assert.equal(await count('listener_chain', 'main', '30d'), 1)
  assert.equal(await count('listener_certificate', 'main', '30d'), 0)

  // A scrape later computes the values at that time, without a check.
  clock.set(T0 + 3_600_000)
  assert.equal((await seriesNow()).find((x) => x.serial === s.leaf!.serial)?.value, (s.leaf!.notAfter - T0 - 3_600_000) / 1000)

  // The managed certificate is announced once, naming every place it is used.
  const managedLine = events.find((e) => e.serial === s.managed!.serial && e.event === 'certificate.expiring')!
  assert.equal(managedLine.kind, 'managed_certificate')
  assert.deepEqual(managedLine.alsoUsedAs, [{ kind: 'issued', name: '(server)', location: 'pki inventory (profile server)' }])
  const chainLine = events.find((e) => e.serial === s.intermediate!.serial && e.event === 'certificate.expiring')!
  assert.equal(chainLine.level, 40, 'a warning')
  assert.equal(chainLine.location, 'listeners.main.tls.certificates.0 (certs/server.pem)')
  assert.equal(chainLine.notAfter, new Date(s.intermediate!.notAfter).toISOString())
  assert.match(String(chainLine.action), /intermediate/)

  assert.deepEqual(await checkAt(0), [], 'a second check at the same time announces nothing')
  assert.deepEqual(await checkAt(16), [`${s.leaf!.serial} 30d`, `${s.managed!.serial} 7d`, `${issued.p1} 7d`].sort())
  assert.deepEqual(await checkAt(17), [])
  // p1 expired and left the inventory listing; p2new and p4 entered 30 days.
  assert.deepEqual(
    await checkAt(39),
    [`${s.leaf!.serial} 7d`, `${s.intermediate!.serial} expired`, `${s.managed!.serial} expired`, `${issued.p2new} 30d`, `${issued.p4} 30d`].sort(),
  )
  assert.equal(await count('issued', 'acme', '30d'), 1)
  assert.equal(await count('issued', 'globex', '30d'), 1)
  assert.equal(await count('listener_chain', 'main', 'expired'), 1)
  assert.ok(((await seriesNow()).find((x) => x.serial === s.intermediate!.serial)?.value ?? 0) < 0, 'negative once expired')
  assert.deepEqual(await checkAt(44.5), [`${s.leaf!.serial} 1d`])
  assert.deepEqual(await checkAt(46), [`${s.leaf!.serial} expired`])
  assert.deepEqual(await checkAt(46), [])

  const expiredLine = events.find((e) => e.serial === s.leaf!.serial && e.event === 'certificate.expired')!
  assert.equal(expiredLine.level, 50, 'an error')
  assert.equal(expiredLine.msg, 'certificate expired: CN=gw-server (listeners.main.tls.certificates.0 (certs/server.pem))')

  // Every announcement reached the webhook, signed over timestamp and body; verified here with node:crypto only.
  const logged = events.filter((e) => typeof e.event === 'string' && String(e.event).startsWith('certificate.'))
  assert.equal(hooks.length, logged.length)
  for (const h of hooks) {
    const timestamp = String(h.headers['x-portcullis-timestamp'])
    const expected = Buffer.from(`sha256=${createHmac('sha256', HOOK_SECRET).update(`${timestamp}.${h.body}`).digest('hex')}`)
    const got = Buffer.from(String(h.headers['x-portcullis-signature']))
    assert.ok(got.length === expected.length && timingSafeEqual(got, expected), 'the signature verifies')
    const body = JSON.parse(h.body) as { id: string; event: string; threshold: string | null; time: string; certificate: { serial: string; notAfter: string; uses: { kind: string }[] } }
    assert.equal(h.headers['x-portcullis-event'], body.event)
    assert.equal(h.headers['x-portcullis-delivery'], body.id)
    assert.equal(Number(timestamp), Math.floor(Date.parse(body.time) / 1000), 'timestamped by the injected clock')
    assert.equal(body.threshold === null, body.event === 'certificate.expired')
  }
  const leafHooks = hooks.map((h) => JSON.parse(h.body)).filter((b) => b.certificate.serial === s.leaf!.serial)
  assert.deepEqual(leafHooks.map((b) => b.threshold), ['30d', '7d', '1d', null])
  assert.equal(leafHooks[0].certificate.notAfter, new Date(s.leaf!.notAfter).toISOString())
  assert.deepEqual(leafHooks[0].certificate.uses, [{ kind: 'listener_certificate', name: 'main', location: 'listeners.main.tls.certificates.0 (certs/server.pem)' }])
  assert.ok(!JSON.stringify(events).includes(HOOK_SECRET), 'the secret is never logged')
  assert.ok(!JSON.stringify(events).includes('PRIVATE KEY'), 'no key material in the logs')
})

test('a reload that replaces the certificate removes its old series, and new thresholds apply, without waiting for the interval', { timeout: 30_000 }, async () => {
  const pki = new TestPki()
  const root = pki.root('replacement-root')
  const fresh = pki.server('gw-server-2', root, { notAfter: new Date(Date.now() + 90 * DAY) })
  copyFileSync(fresh.chain, join(work, 'certs/server.pem'))
  copyFileSync(fresh.key, join(work, 'certs/server.key'))
  const replacement = judge(fresh.cert)
  const oldLeaf = judged.leaf!.serial
  const oldChain = judged.intermediate!.serial
  const reloaded = await gw.reload(yaml('[30d, 14d, 7d, 1d]'))
  assert.ok(reloaded.ok, JSON.stringify(reloaded))

  // No check() call: the monitor's own tick notices the new config version.
  const deadline = Date.now() + 10_000
  let series = await seriesNow()
  while (!series.some((x) => x.serial === replacement.serial) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100))
    series = await seriesNow()
  }
  const mine = series.filter((x) => x.kind.startsWith('listener_'))
  assert.deepEqual(mine.map((x) => [x.kind, x.serial]), [['listener_certificate', replacement.serial]], 'only the new certificate; the old leaf and its chain are gone')
  assert.ok(!series.some((x) => x.serial === oldLeaf || x.serial === oldChain), 'no series of the replaced certificates')
  assert.equal(mine[0]!.value, (replacement.notAfter - clock.now()) / 1000)
  assert.equal(await count('listener_certificate', 'main', '14d'), 0, 'the new threshold is counted')
  assert.equal(await count('upstream_client_certificate', 'app', '14d'), 0)

  // Turned off by a reload: the series go at once; turned on again, they come back.
  const waitForSeries = async (isWanted: (n: number) => boolean) => {
    const until = Date.now() + 10_000
    while (!isWanted((await seriesNow()).length) && Date.now() < until) await new Promise((r) => setTimeout(r, 100))
    return (await seriesNow()).length
  }
  assert.ok((await gw.reload(yaml('[30d, 14d, 7d, 1d]', false))).ok)
  assert.equal(await waitForSeries((n) => n === 0), 0, 'no series while monitoring is off')
  assert.ok((await gw.reload(yaml('[30d, 14d, 7d, 1d]'))).ok)
  assert.ok((await waitForSeries((n) => n > 0)) > 0, 'back when turned on')

  await monitor.close()
  assert.deepEqual(await seriesNow(), [], 'a closed monitor publishes nothing')
})

test('more partner certificates than the limits: bounded series, complete counts, announcements spread over checks', { timeout: 60_000 }, async () => {
  const bulk = 2 * ISSUED_ANNOUNCEMENTS_PER_CHECK + 20
  assert.ok(bulk > ISSUED_SERIES_LIMIT, 'more than the series limit')
  for (let i = 0; i < bulk; i++) await issue(`bulk${i}`, `CN=d${i}.bulk.test, O=bulk`, 'bulk', 10 * DAY + i * 60_000, clock.now())
  registry = createMetricsRegistry()
  const from = events.length
  const since = () => events.slice(from)
  const bulkAnnounced = () => since().filter((e) => e.event === 'certificate.expiring' && String(e.subject).endsWith('O=bulk')).length
  // A fresh monitor, as after a restart: what is within a threshold is announced again.
  monitor = startExpiryMonitor({ current: () => gw.gateway.current(), source: { baseDir: work, env }, clock, log, metrics: registry, pki: service.expiryView })
  try {
    await monitor.check() // after the check that starting runs
    // About 10 days left: the 14d threshold of the reloaded config. acme's p2new and globex's p4 (13 and 14 days left) are due too, after every bulk one.
    assert.deepEqual(since().filter((e) => e.held).map((e) => e.held), [{ '14d': bulk + 2 - ISSUED_ANNOUNCEMENTS_PER_CHECK }, { '14d': bulk + 2 - 2 * ISSUED_ANNOUNCEMENTS_PER_CHECK }], 'each check announces at most the limit and sums up the rest')
    assert.equal(bulkAnnounced(), 2 * ISSUED_ANNOUNCEMENTS_PER_CHECK)
    assert.ok(since().some((e) => e.event === 'certificate.expired' && e.kind === 'managed_certificate'), 'the gateway\'s own are never held back')
    const series = (await seriesNow()).filter((x) => x.kind === 'issued')
    assert.equal(series.length, ISSUED_SERIES_LIMIT, 'per-certificate series stop at the limit')
    assert.ok(series.some((x) => x.serial === issued.bulk0), 'the soonest to expire are kept')
    assert.ok(!series.some((x) => x.serial === issued[`bulk${bulk - 1}`]), 'the latest to expire are left out')
    assert.equal(await count('issued', 'bulk', '30d'), bulk, 'the count covers them all')
    await monitor.check()
    assert.equal(bulkAnnounced(), bulk, 'the next check announces the rest')
    assert.equal(new Set(since().filter((e) => String(e.subject).endsWith('O=bulk')).map((e) => e.serial)).size, bulk, 'each once')
    assert.equal(since().filter((e) => e.held).length, 2, 'nothing held any more')
  } finally {
    await monitor.close()
  }
})
