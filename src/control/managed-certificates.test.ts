import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { TestPki } from '../../test/harness/pki.js'
import { pkiSchema, type PkiConfig } from '../config/schema/pki.js'
import { initCa } from '../pki/ca-init.js'
import type { LoadedCa } from '../pki/ca-load.js'
import { FixedClock } from '../shared/clock.js'
import { silentLogger } from '../shared/log.js'
import { openSqliteStorage, type SqliteStorage } from '../storage/sqlite.js'
import { ensureManagedCertificates, parseManagedSan, whyRenew, type ManagedCertificateDeps } from './managed-certificates.js'

const passphrase = 'test-passphrase-0123456789'
let work: string
let ca: LoadedCa
let otherCa: LoadedCa
let storage: SqliteStorage
const clock = new FixedClock(Date.now())

function newCa(dir: string): Promise<LoadedCa> {
  return initCa({ dir, passphrase, clock, rootSubject: 'CN=Managed Test Root', intermediateSubject: 'CN=Managed Test Issuing' })
}

function config(entries: readonly Record<string, unknown>[]): PkiConfig {
  return pkiSchema.parse({ caDir: 'ca', passphrase: { env: 'X' }, inventory: { sqlite: 'inv.sqlite' }, managedCertificates: entries })
}

const server = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  profile: 'server',
  subject: `CN=${name}.test`,
  sans: [`DNS:${name}.test`, 'IP:::1'],
  certFile: `out/${name}.pem`,
  keyFile: `out/${name}.key`,
  ...extra,
})

function deps(overrides: Partial<ManagedCertificateDeps> = {}): ManagedCertificateDeps {
  return { ca, inventory: storage.inventory, source: { baseDir: work, env: {} }, clock, log: silentLogger(), ...overrides }
}

const fingerprint = (name: string) => new X509Certificate(readFileSync(join(work, `out/${name}.pem`))).fingerprint256

before(async () => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-managed-'))
  ca = await newCa(join(work, 'ca'))
  otherCa = await newCa(join(work, 'other-ca'))
  storage = openSqliteStorage({ path: join(work, 'inv.sqlite'), clock })
})

after(async () => {
  await storage?.close()
})

describe('ensureManagedCertificates', { timeout: 30_000 }, () => {
  test('issues missing files once; a second pass renews nothing', async () => {
    const cfg = config([server('alpha')])
    assert.deepEqual(await ensureManagedCertificates(cfg, deps()), { renewed: ['alpha'], failed: [] })
    assert.deepEqual(await ensureManagedCertificates(cfg, deps()), { renewed: [], failed: [] })
  })

  test('re-issues when the key does not belong to the certificate', async () => {
    const cfg = config([server('beta')])
    await ensureManagedCertificates(cfg, deps())
    const harness = new TestPki()
    const foreign = harness.server('foreign', harness.root('r'))
    copyFileSync(foreign.key, join(work, 'out/beta.key'))
    assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), 'key_mismatch')
    const before = fingerprint('beta')
    assert.deepEqual((await ensureManagedCertificates(cfg, deps())).renewed, ['beta'])
    assert.notEqual(fingerprint('beta'), before)
    assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), undefined)
  })

  test('re-issues an unreadable (non-PEM) certificate file', async () => {
    const cfg = config([server('gamma')])
    await ensureManagedCertificates(cfg, deps())
    writeFileSync(join(work, 'out/gamma.pem'), 'not a certificate')
    assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), 'unreadable')
  })

  test('re-issues when the certificate no longer says what the config asks', async () => {
    await ensureManagedCertificates(config([server('delta')]), deps())
    const changedSans = config([server('delta', { sans: ['DNS:delta.test', 'DNS:more.test'] })])
    assert.equal(await whyRenew(changedSans.managedCertificates[0]!, deps()), 'config_changed')
    const changedSubject = config([server('delta', { subject: 'CN=other.test' })])
    assert.equal(await whyRenew(changedSubject.managedCertificates[0]!, deps()), 'config_changed')
    const changedProfile = config([server('delta', { profile: 'client' })])
    assert.equal(await whyRenew(changedProfile.managedCertificates[0]!, deps()), 'config_changed')
  })

  test('re-issues a certificate revoked in the inventory', async () => {
    const cfg = config([server('epsilon')])
    await ensureManagedCertificates(cfg, deps())
    const serial = new X509Certificate(readFileSync(join(work, 'out/epsilon.pem'))).serialNumber.toLowerCase()
    assert.equal((await storage.inventory.revoke(serial, 'keyCompromise', clock.now())).outcome, 'revoked')
    assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), 'revoked')
  })

  test('re-issues a certificate from another CA (a re-initialised CA)', async () => {
    const cfg = config([server('zeta')])
    await ensureManagedCertificates(cfg, deps({ ca: otherCa }))
    assert.equal(await whyRenew(cfg.managedCertificates[0]!, deps()), 'foreign_issuer')
  })

  test('one entry that cannot be issued does not stop the others', async () => {
    // A server certificate needs a DNS or IP SAN: the CA's profile refuses this one.
    const cfg = config([server('eta', { sans: [] }), server('theta')])
    const result = await ensureManagedCertificates(cfg, deps())
    assert.deepEqual(result.renewed, ['theta'])
    assert.deepEqual(result.failed.map((f) => f.name), ['eta'])
  })
})

describe('pki.managedCertificates schema', () => {
  test('defaults to no entries and a 30-day validity', () => {
    assert.deepEqual(config([]).managedCertificates, [])
    assert.equal(config([server('a')]).managedCertificates[0]!.validity, 30 * 86_400_000)
  })

  test('refuses duplicate names, files written twice, other profiles and malformed SANs', () => {
    const parse = (entries: Record<string, unknown>[]) =>
      pkiSchema.safeParse({ caDir: 'ca', passphrase: { env: 'X' }, inventory: { sqlite: 'i' }, managedCertificates: entries })
    assert.equal(parse([server('a'), server('a', { certFile: 'x.pem', keyFile: 'x.key' })]).success, false)
    assert.equal(parse([server('a'), server('b', { keyFile: './out/a.key' })]).success, false)
    assert.equal(parse([server('a', { keyFile: 'out/a.pem' })]).success, false)
    assert.equal(parse([server('a', { profile: 'partner' })]).success, false)
    assert.equal(parse([server('a', { sans: ['localhost'] })]).success, false)
    assert.equal(parse([server('a'), server('b')]).success, true)
  })

  test('parses SANs in the CLI spelling', () => {
    assert.deepEqual(parseManagedSan('dns:a.test'), { type: 'dns', value: 'a.test' })
    assert.deepEqual(parseManagedSan('IP:::1'), { type: 'ip', value: '::1' })
    assert.throws(() => parseManagedSan('X400:foo'))
  })
})
