/**
 * Which certificate a partner actually uses during a rotation: the partner
 * holds two valid certificates from the built-in CA (openssl-made keys and
 * CSRs, signed under its policy), connects with the new one only, and
 * `portcullis ca list` — the real CLI in a child process, reading the same
 * SQLite inventory — shows the new one seen and the old one never seen, as
 * a table and as JSON, and `--unused-for` names the old one. The sighting
 * reaches the inventory through the PKI service's periodic flush.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent, request } from 'undici'
import { pkiSchema } from '../../src/config/schema/pki.js'
import { runCaList } from '../../src/cli/ca-list.js'
import { toInventoryRecord } from '../../src/control/inventory-record.js'
import { SIGHTINGS_FLUSH_INTERVAL_MS, startPkiService, type PkiService } from '../../src/control/pki-service.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { signCsr } from '../../src/pki/ca-sign-csr.js'
import { CertificateSightings } from '../../src/proxy/certificate-sightings.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import { systemClock } from '../../src/shared/clock.js'
import { openSqliteStorage, type SqliteStorage } from '../../src/storage/sqlite.js'
import { startGateway, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { newCa, openssl, passphrase, put } from './pki-helpers.js'

const root = join(import.meta.dirname, '..', '..')
const env = { PKI_PASSPHRASE: passphrase }
const DAY_MS = 86_400_000

/** Runs a CLI without blocking the event loop (the gateway lives in this process). */
function run(cmd: string, args: readonly string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000, cwd: root, env: { PATH: process.env.PATH ?? '', ...env } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

let ca: LoadedCa
let work: string
let config: string
let serverRoot: CaFiles
let inventory: SqliteStorage
let upstream: TestUpstream
let service: PkiService
let gw: TestGateway
const sightings = new CertificateSightings()

/** A partner certificate: openssl key and CSR, signed under acme's policy, recorded in the inventory as `ca sign` would. */
async function partnerCert(name: string): Promise<{ serial: string; chain: string; key: string }> {
  const key = join(work, `${name}.key`)
  const csr = join(work, `${name}.csr`)
  assert.equal(openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status, 0)
  const r = openssl(['req', '-new', '-key', key, '-subj', '/CN=api.acme.test', '-addext', 'subjectAltName=DNS:api.acme.test', '-out', csr])
  assert.equal(r.status, 0, r.stderr)
  const signed = await signCsr(ca, readFileSync(csr, 'utf8'), {
    profile: 'partner',
    partnerPolicy: { name: 'acme', allowedDnsNames: ['api.acme.test'], maxLifetimeMs: 30 * DAY_MS },
    clock: systemClock,
  })
  assert.ok(signed.ok, JSON.stringify(signed))
  await inventory.inventory.add(toInventoryRecord(signed.record))
  return { serial: signed.record.serial, key, chain: put(work, `${name}-chain.pem`, signed.certPem + ca.intermediate.toString('pem') + '\n') }
}

interface Listed {
  serial: string
  partner?: string
  lastSeenAt?: string
}

/** `ca list` as the operator runs it: the CLI in a child process. */
async function caList(...flags: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return run(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), 'ca', 'list', '--config', config, ...flags])
}

/** `ca list --json`, the same command run in this process (a child process costs seconds on a loaded machine). */
async function caListJson(...flags: string[]): Promise<Listed[]> {
  const out: string[] = []
  const err: string[] = []
  const code = await runCaList(['--config', config, '--json', ...flags], { out: (l) => out.push(l), err: (l) => err.push(l), env, clock: systemClock })
  assert.equal(code, 0, err.join('\n'))
  return out.map((l) => JSON.parse(l) as Listed)
}

before(async () => {
  ;({ ca, work } = await newCa())
  const harness = new TestPki()
  serverRoot = harness.root('overlap-server-root')
  const server = harness.server('overlap-gateway', serverRoot)
  upstream = await startUpstream()
  const rootFile = put(work, 'root-only.crt', ca.root.toString('pem'))
  const yaml = `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${rootFile} }] }
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: partners
    match: { path: { prefix: /r } }
    access: { allowAnyClientCert: true }
    upstream: app
pki:
  caDir: ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: inventory.sqlite }
  revocationSync: 100ms
  partners:
    acme: { dnsNames: [api.acme.test] }
`
  config = join(work, 'gateway.yaml')
  writeFileSync(config, yaml)
  inventory = openSqliteStorage({ path: join(work, 'inventory.sqlite'), clock: systemClock })
  const cfg = pkiSchema.parse({ caDir: 'ca', passphrase: { env: 'PKI_PASSPHRASE' }, inventory: { sqlite: 'inventory.sqlite' }, revocationSync: '100ms' })
  service = await startPkiService(cfg, { source: { baseDir: work, env }, clock: systemClock, log: pino({ level: 'silent' }), revocation: new RevocationSet(), sightings })
  gw = await startGateway({ yaml, dir: work, env, sightings })
})

after(async () => {
  await gw?.close()
  await service?.close()
  await inventory?.close()
  await upstream?.close()
})

describe('a partner rotating between two valid certificates', { timeout: 90_000 }, () => {
  test('ca list shows the certificate in use as seen and the old one as never seen', async () => {
    const old = await partnerCert('acme-old')
    const fresh = await partnerCert('acme-new')
    const agent = new Agent({ connect: { ca: readFileSync(serverRoot.cert), cert: readFileSync(fresh.chain), key: readFileSync(fresh.key), servername: 'localhost' } })
    const before = Date.now()
    try {
      for (let i = 0; i < 3; i++) {
        const res = await request(`https://127.0.0.1:${gw.port()}/r`, { dispatcher: agent })
        await res.body.text()
        assert.equal(res.statusCode, 200)
      }
    } finally {
      await agent.close()
    }

    // The service flushes sightings every few seconds (SIGHTINGS_FLUSH_INTERVAL_MS); the CLI's view is the inventory's.
    let seenAt: number | undefined
    const deadline = Date.now() + SIGHTINGS_FLUSH_INTERVAL_MS + 5000
    while (seenAt === undefined && Date.now() < deadline) {
      seenAt = (await inventory.inventory.get(fresh.serial))?.lastSeenAt
      if (seenAt === undefined) await new Promise((resolve) => setTimeout(resolve, 200))
    }
    assert.ok(seenAt !== undefined, 'the sighting reached the inventory')
    assert.ok(seenAt >= before && seenAt <= Date.now(), `lastSeenAt ${seenAt} is the handshake time`)

    const listed = await caListJson('--partner', 'acme')
    const bySerial = new Map(listed.map((r) => [r.serial, r]))
    assert.equal(bySerial.get(fresh.serial)?.lastSeenAt, new Date(seenAt).toISOString())
    assert.ok(bySerial.has(old.serial))
    assert.equal(bySerial.get(old.serial)?.lastSeenAt, undefined, 'the old certificate was never presented')

    const table = await caList('--partner', 'acme')
    assert.equal(table.code, 0, table.stderr)
    assert.match(table.stdout, /^SERIAL\s+SUBJECT\s+PROFILE\s+PARTNER\s+NOT AFTER\s+LAST SEEN\s+STATUS$/m)
    assert.match(table.stdout, new RegExp(`^${fresh.serial}\\s.*\\s${new Date(seenAt).toISOString()}\\s+valid$`, 'm'))
    assert.match(table.stdout, new RegExp(`^${old.serial}\\s.*\\snever\\s+valid$`, 'm'))

    const idle = await caListJson('--partner', 'acme', '--unused-for', '1h')
    assert.deepEqual(idle.map((r) => r.serial), [old.serial], '--unused-for names only the idle certificate')
    assert.equal(await runCaList(['--config', config, '--unused-for', 'soon'], { out: () => undefined, err: () => undefined, env, clock: systemClock }), 2)
  })
})
