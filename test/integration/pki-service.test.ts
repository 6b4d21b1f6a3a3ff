/**
 * The gateway's PKI service end to end, with everything real: a CA made by
 * initCa, a SQLite inventory written through a second connection (as the
 * `portcullis ca` CLI would, from another process), a gateway whose
 * listener trusts the CA's root, and the openssl and curl CLIs as judges of
 * the CRL and OCSP answers served over HTTP.
 */
import assert from 'node:assert/strict'
import { execFile, spawn, spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { Agent, request } from 'undici'
import { pkiSchema, type PkiConfig } from '../../src/config/schema/pki.js'
import { toInventoryRecord } from '../../src/control/inventory-record.js'
import { startPkiService, type PkiService } from '../../src/control/pki-service.js'
import { issueCertificate } from '../../src/pki/ca-issue.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { signCsr } from '../../src/pki/ca-sign-csr.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import { systemClock } from '../../src/shared/clock.js'
import { openSqliteStorage, type SqliteStorage } from '../../src/storage/sqlite.js'
import { waitFor } from '../harness/client.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { newCa, openssl, passphrase, put } from './pki-helpers.js'

const DAY_MS = 86_400_000

let ca: LoadedCa
let work: string
let rootFile: string
let intermediateFile: string
let chainFile: string
let cfg: PkiConfig
/** The inventory as the CLI sees it: its own connection to the same SQLite file. */
let cli: SqliteStorage
const env: Record<string, string> = { PKI_PASSPHRASE: passphrase }
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

function start(revocation = new RevocationSet()): Promise<PkiService> {
  return startPkiService(cfg, { source: { baseDir: work, env }, clock: systemClock, log, revocation })
}

/** A partner key and CSR made by `openssl req`, signed by the CA under the partner's policy, and recorded in the inventory. */
async function onboardPartner(name: string, dns: string): Promise<{ cert: string; key: string; serial: string; withChain: string }> {
  const key = join(work, `${name}.key`)
  const csr = join(work, `${name}.csr`)
  assert.equal(openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status, 0)
  const r = openssl(['req', '-new', '-key', key, '-subj', `/CN=${dns}`, '-addext', `subjectAltName=DNS:${dns}`, '-out', csr])
  assert.equal(r.status, 0, r.stderr)
  const signed = await signCsr(ca, readFileSync(csr, 'utf8'), {
    profile: 'partner',
    partnerPolicy: { name, allowedDnsNames: [dns], maxLifetimeMs: 30 * DAY_MS },
    clock: systemClock,
  })
  assert.ok(signed.ok, JSON.stringify(signed))
  await cli.inventory!.add(toInventoryRecord(signed.record))
  const cert = put(work, `${name}.crt`, signed.certPem)
  const withChain = put(work, `${name}-chain.pem`, signed.certPem + ca.intermediate.toString('pem') + '\n')
  return { cert, key, serial: signed.record.serial, withChain }
}

/** Runs a CLI without blocking the event loop (the servers it talks to live in this process). */
function run(cmd: string, args: readonly string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

async function curl(url: string, out: string): Promise<number> {
  const r = await run('curl', ['-sS', '-o', out, '-w', '%{http_code}', '--max-time', '10', url])
  assert.equal(r.code, 0, r.stderr)
  return Number(r.stdout)
}

/** SHA-256 of the issuing CA certificate, as the gateway computes a client's issuer fingerprint. */
function intermediateFingerprint(): string {
  return createHash('sha256').update(new Uint8Array(ca.intermediate.rawData)).digest('hex')
}

let seq = 0
/** Fetches /crl with curl and has openssl verify it against the CA; returns the CRL number and the revoked serials (lowercase). */
async function fetchCrl(port: number): Promise<{ number: bigint; serials: string[] }> {
  const file = join(work, `crl-${++seq}.der`)
  assert.equal(await curl(`http://127.0.0.1:${port}/crl`, file), 200)
  const r = openssl(['crl', '-inform', 'DER', '-in', file, '-CAfile', chainFile, '-noout', '-text'])
  assert.equal(r.status, 0, r.stderr)
  assert.match(r.stderr + r.stdout, /verify OK/)
  const number = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(r.stdout)
  assert.ok(number, r.stdout)
  const serials = [...r.stdout.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1]!.toLowerCase().replace(/^0+/, ''))
  return { number: BigInt(number[1]!), serials }
}

/** `openssl ocsp` against the service, as the task states it: "good", "revoked" or "unknown", and whether the response verified. */
async function ocsp(port: number, cert: string): Promise<{ status: string; isVerified: boolean; out: string }> {
  const r = await run('openssl', ['ocsp', '-issuer', intermediateFile, '-cert', cert, '-url', `http://127.0.0.1:${port}/ocsp`, '-CAfile', rootFile])
  const m = new RegExp(`${cert.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: (good|revoked|unknown)`).exec(r.stdout)
  return { status: m?.[1] ?? '', isVerified: /Response verify OK/.test(r.stderr), out: r.stdout + r.stderr }
}

before(async () => {
  ;({ ca, work } = await newCa())
  rootFile = put(work, 'root-only.crt', ca.root.toString('pem'))
  intermediateFile = put(work, 'intermediate-only.crt', ca.intermediate.toString('pem'))
  chainFile = put(work, 'ca-bundle.pem', ca.chainPem)
  cfg = pkiSchema.parse({
    caDir: 'ca',
    passphrase: { env: 'PKI_PASSPHRASE' },
    inventory: { sqlite: 'inventory.sqlite' },
    http: { port: 0 },
    revocationSync: '200ms',
  })
  cli = openSqliteStorage({ path: join(work, 'inventory.sqlite'), clock: systemClock })
})

after(async () => {
  await cli?.close()
})

describe('partner onboarding: CSR → sign → connect → revoke → refused', { timeout: 60_000 }, () => {
  let upstream: TestUpstream
  let gw: TestGateway
  let service: PkiService
  const revocation = new RevocationSet()
  let harnessRoot: CaFiles
  let partner: Awaited<ReturnType<typeof onboardPartner>>

  before(async () => {
    const pki = new TestPki()
    harnessRoot = pki.root('server-root')
    const server: CertFiles = pki.server('gateway', harnessRoot)
    partner = await onboardPartner('globex', 'api.globex.test')
    const intermediateFp = intermediateFingerprint()
    upstream = await startUpstream()
    service = await start(revocation)
    gw = await startGateway({
      revocation,
      yaml: `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${rootFile} }] }
identities:
  globex: [{ dns: api.globex.test, issuerFingerprint: ${intermediateFp} }]
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: partners
    match: { path: { prefix: /r } }
    access: { identities: [globex] }
    upstream: app
`,
    })
  })

  after(async () => {
    await gw?.close()
    await service?.close()
    await upstream?.close()
  })

  test('a revocation in the inventory refuses the partner within one second and closes its keep-alive connection', async () => {
    const agent = new Agent({
      connections: 1,
      connect: { ca: readFileSync(harnessRoot.cert), cert: readFileSync(partner.withChain), key: readFileSync(partner.key), servername: 'localhost' },
    })
    const get = async (): Promise<number> => {
      const res = await request(`https://127.0.0.1:${gw.port()}/r`, { dispatcher: agent })
      await res.body.text()
      return res.statusCode
    }
    try {
      assert.equal(await get(), 200, 'the signed partner certificate is admitted')
      assert.equal(await get(), 200, 'on the same keep-alive connection')
      const logsBefore = gw.logs.length
      const started = Date.now()
      const result = await cli.inventory!.revoke(partner.serial, 'keyCompromise', Date.now())
      assert.equal(result.outcome, 'revoked')

      const closed = () => gw.logs.slice(logsBefore).some((l) => l.reason === 'cert_revoked' && String(l.detail).includes('established connection closed'))
      assert.ok(await waitFor(closed, 1000), 'the established connection was closed')
      assert.ok(Date.now() - started < 1000, `within one second (took ${Date.now() - started} ms)`)

      await assert.rejects(get(), 'a new connection is refused')
      assert.ok(gw.logs.slice(logsBefore).some((l) => l.type === 'handshake' && l.reason === 'cert_revoked'), JSON.stringify(gw.logs.slice(logsBefore)))
      const entry = revocation.lookup({ serialNumber: partner.serial, issuerFingerprint256: intermediateFingerprint() } as never)
      assert.equal(entry?.reason, 'keyCompromise', 'synced with the reason and our issuer')
    } finally {
      await agent.destroy()
    }
  })
})

describe('CRL and OCSP over HTTP', { timeout: 60_000 }, () => {
  test('openssl ocsp says good, then revoked; a certificate we never issued is unknown', async () => {
    const service = await start()
    try {
      const partner = await onboardPartner('initech', 'api.initech.test')
      const port = service.port!
      const before = await ocsp(port, partner.cert)
      assert.equal(before.status, 'good', before.out)
      assert.ok(before.isVerified, before.out)

      // Signed by our intermediate but never recorded in the inventory.
      const stranger = await issueCertificate(ca, { profile: 'client', subject: 'CN=stranger', plainKey: true, clock: systemClock })
      const unknown = await ocsp(port, put(work, 'stranger.crt', stranger.certPem))
      assert.equal(unknown.status, 'unknown', unknown.out)

      await cli.inventory!.revoke(partner.serial, 'superseded', Date.now())
      const afterRevoke = await ocsp(port, partner.cert)
      assert.equal(afterRevoke.status, 'revoked', afterRevoke.out)
      assert.ok(afterRevoke.isVerified, afterRevoke.out)
      assert.match(afterRevoke.out, /Reason: superseded/)
    } finally {
      await service.close()
    }
  })

  test('the CRL lists revoked serials, verifies against the CA, and its number increases across revocations and restarts', async () => {
    let service = await start()
    try {
      const first = await onboardPartner('hooli', 'api.hooli.test')
      const second = await onboardPartner('umbrella', 'api.umbrella.test')
      await cli.inventory!.revoke(first.serial, 'keyCompromise', Date.now())
      let crl = await fetchCrl(service.port!)
      const deadline = Date.now() + 3000
      while (!crl.serials.includes(first.serial) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100))
        crl = await fetchCrl(service.port!)
      }
      assert.ok(crl.serials.includes(first.serial), `${first.serial} in ${crl.serials.join(',')}`)
      assert.ok(!crl.serials.includes(second.serial))
      const afterFirst = crl.number

      await cli.inventory!.revoke(second.serial, 'affiliationChanged', Date.now())
      const until = Date.now() + 3000
      while (!crl.serials.includes(second.serial) && Date.now() < until) {
        await new Promise((r) => setTimeout(r, 100))
        crl = await fetchCrl(service.port!)
      }
      assert.ok(crl.serials.includes(second.serial) && crl.serials.includes(first.serial), crl.serials.join(','))
      assert.ok(crl.number > afterFirst, `${crl.number} > ${afterFirst}`)
      const beforeRestart = crl.number

      await service.close()
      service = await start()
      const restarted = await fetchCrl(service.port!)
      assert.ok(restarted.number > beforeRestart, `${restarted.number} > ${beforeRestart} after a restart`)
      assert.ok(restarted.serials.includes(first.serial) && restarted.serials.includes(second.serial), 'rebuilt from the inventory')
    } finally {
      await service.close()
    }
  })

  test('serves only /crl, /crl.pem and /ocsp (and the CA URLs’ paths); everything else is 404', async () => {
    const service = await start()
    try {
      const port = service.port!
      assert.equal(await curl(`http://127.0.0.1:${port}/`, join(work, 'x1')), 404)
      assert.equal(await curl(`http://127.0.0.1:${port}/crl/x`, join(work, 'x2')), 404)
      assert.equal(await curl(`http://127.0.0.1:${port}/intermediate.crl`, join(work, 'x3')), 200, 'the CDP path written in certificates')
      // The PEM form is the same CRL: openssl reads it as PEM and it equals the DER one.
      const pemFile = join(work, 'x4.pem')
      assert.equal(await curl(`http://127.0.0.1:${port}/crl.pem`, pemFile), 200)
      const derFile = join(work, 'x4.der')
      openssl(['crl', '-in', pemFile, '-outform', 'DER', '-out', derFile])
      assert.deepEqual(readFileSync(derFile), readFileSync(join(work, 'x3')))
      const text = openssl(['crl', '-in', pemFile, '-CAfile', chainFile, '-noout', '-text'])
      assert.match(text.stderr + text.stdout, /verify OK/)
    } finally {
      await service.close()
    }
  })

  test('refuses to start with a wrong passphrase, naming the CA step', async () => {
    await assert.rejects(
      startPkiService(cfg, { source: { baseDir: work, env: { PKI_PASSPHRASE: 'wrong-passphrase-000000' } }, clock: systemClock, log, revocation: new RevocationSet() }),
      (err: Error) => err.message.startsWith('pki: cannot load the CA') && (err.cause as { code?: string }).code === 'ca_passphrase_invalid',
    )
  })
})

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = (s.address() as { port: number })
      s.close(() => resolve(port))
    })
  })
}

describe('portcullis start with a pki section', { timeout: 90_000 }, () => {
  const repo = join(import.meta.dirname, '..', '..')
  const cli = ['--import', 'tsx', join(repo, 'src', 'cli', 'index.ts')]

  async function gatewayYaml(pkiPort: number, sync: string): Promise<string> {
    const pki = new TestPki()
    const harnessRoot = pki.root('root')
    const server = pki.server('gateway', harnessRoot)
    return `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${rootFile} }] }
upstreams:
  app: { targets: [{ url: http://127.0.0.1:9 }] }
routes:
  - name: r
    match: { path: { prefix: / } }
    access: { allowAnyClientCert: true }
    upstream: app
pki:
  caDir: ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: inventory.sqlite }
  http: { port: ${pkiPort} }
  revocationSync: ${sync}
`
  }

  function launch(config: string, pass: string): { exited: Promise<number | null>; output: () => string; kill: (s: NodeJS.Signals) => void; isRunning: () => boolean } {
    const child = spawn(process.execPath, [...cli, 'start', '--config', config, '--pid-file', join(work, `gw-${++seq}.pid`)], {
      cwd: repo,
      env: { ...process.env, PKI_PASSPHRASE: pass },
    })
    let text = ''
    child.stdout.on('data', (c: Buffer) => (text += c.toString()))
    child.stderr.on('data', (c: Buffer) => (text += c.toString()))
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
    return { exited, output: () => text, kill: (s) => child.kill(s), isRunning: () => child.exitCode === null }
  }

  async function until(check: () => boolean, ms: number): Promise<void> {
    const deadline = Date.now() + ms
    while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
  }

  test('serves the CRL, warns that a changed pki section needs a restart, and closes it on SIGTERM', async () => {
    const pkiPort = await freePort()
    const config = join(work, 'gateway-main.yaml')
    writeFileSync(config, await gatewayYaml(pkiPort, '250ms'))
    const gw = launch(config, passphrase)
    try {
      await until(() => /pki: serving/.test(gw.output()) || !gw.isRunning(), 30_000)
      assert.match(gw.output(), /pki: serving/)
      await fetchCrl(pkiPort)

      writeFileSync(config, readFileSync(config, 'utf8').replace('revocationSync: 250ms', 'revocationSync: 1s'))
      gw.kill('SIGHUP')
      await until(() => /takes effect at the next restart/.test(gw.output()), 10_000)
      assert.match(gw.output(), /"level":"warn"[^\n]*the pki section changed/)
    } finally {
      gw.kill('SIGTERM')
    }
    assert.equal(await gw.exited, 0)
    const r = await run('curl', ['-sS', '-o', '/dev/null', '--max-time', '5', `http://127.0.0.1:${pkiPort}/crl`])
    assert.notEqual(r.code, 0, 'the CRL endpoint is closed')
  })

  test('a fresh install starts on managed certificate files that do not exist yet; an unissuable one exits 1', async () => {
    const base = (await gatewayYaml(await freePort(), '500ms')).replace(/certificates: \[\{ cert: \{ file: [^}]+\}, key: \{ file: [^}]+\} \}\]/, 'certificates: [{ cert: { file: managed-server.crt }, key: { file: managed-server.key } }]')
    const managed = (subject: string) => `${base}  managedCertificates:\n    - { name: edge, profile: server, subject: "${subject}", sans: ["DNS:localhost"], validity: 1d, certFile: managed-server.crt, keyFile: managed-server.key }\n`
    const config = join(work, 'gateway-managed.yaml')
    writeFileSync(config, managed('CN=localhost'))
    const gw = launch(config, passphrase)
    try {
      await until(() => /"msg":"listening"/.test(gw.output()) || !gw.isRunning(), 30_000)
      const port = Number(/"port":(\d+)[^\n]*"msg":"listening"/.exec(gw.output())?.[1])
      assert.ok(port > 0, gw.output())
      const served = spawnSync('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'], { input: '', encoding: 'utf8', timeout: 10_000 })
      assert.match(served.stdout, /issuer=.*Portcullis.*Issuing|issuer=.*Intermediate/i, served.stdout.slice(0, 1500))
      assert.match(served.stdout, /subject=CN ?= ?localhost/, 'the managed certificate is served')
    } finally {
      gw.kill('SIGTERM')
    }
    assert.equal(await gw.exited, 0)

    const badConfig = join(work, 'gateway-managed-bad.yaml')
    writeFileSync(badConfig, managed('CN=localhost').replace('managed-server.crt', 'managed-bad.crt').replace('managed-server.key', 'managed-bad.key').replace(/file: managed-server/g, 'file: managed-bad').replace('"DNS:localhost"', '"DNS:not a name"'))
    const bad = launch(badConfig, passphrase)
    assert.equal(await bad.exited, 1, bad.output())
    assert.match(bad.output(), /cannot prepare the managed certificates/)
  })

  test('exits 1 at start when the CA cannot be loaded', async () => {
    const config = join(work, 'gateway-bad.yaml')
    writeFileSync(config, await gatewayYaml(await freePort(), '500ms'))
    const gw = launch(config, 'not-the-passphrase-0000')
    const code = await gw.exited
    assert.equal(code, 1, gw.output())
    assert.match(gw.output(), /cannot start the certificate authority service/)
  })
})
