/**
 * The CA core against openssl as the judge: init, every profile, extensions,
 * serials, key files, wrong passphrase, refusing to overwrite, root key export.
 */
import { strict as assert } from 'node:assert'
import { readFileSync, statSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it, before } from 'node:test'
import { isCaError } from '../../src/pki/ca-errors.js'
import { initCa } from '../../src/pki/ca-init.js'
import { issueCertificate } from '../../src/pki/ca-issue.js'
import type { IssueOptions } from '../../src/pki/ca-issue.js'
import { loadCa } from '../../src/pki/ca-load.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { exportAndRemoveRootKey } from '../../src/pki/ca-root-export.js'
import type { KeyAlgorithmName } from '../../src/pki/keys.js'
import type { ProfileName } from '../../src/pki/profiles.js'
import type { FixedClock } from '../../src/shared/clock.js'
import { extension, newCa, openssl, passphrase, put, snapshot, tempDir, urls, x509Text } from './pki-helpers.js'

const DAY_MS = 86_400_000

/** A valid request per profile; the purpose openssl verify checks it for. */
const cases: ReadonlyArray<{ profile: ProfileName; opts: Omit<IssueOptions, 'clock'>; purpose: string; eku: string }> = [
  {
    profile: 'server',
    opts: { profile: 'server', subject: 'CN=api.example.test', sans: [{ type: 'dns', value: 'api.example.test' }, { type: 'ip', value: '127.0.0.1' }], plainKey: true },
    purpose: 'sslserver',
    eku: 'TLS Web Server Authentication',
  },
  { profile: 'client', opts: { profile: 'client', subject: 'CN=orders, O=Acme', sans: [{ type: 'uri', value: 'spiffe://acme.test/orders' }], plainKey: true }, purpose: 'sslclient', eku: 'TLS Web Client Authentication' },
  { profile: 'partner', opts: { profile: 'partner', subject: 'CN=billing, O=globex', partner: 'globex', plainKey: true }, purpose: 'sslclient', eku: 'TLS Web Client Authentication' },
  {
    profile: 'spiffe',
    opts: { profile: 'spiffe', subject: 'CN=payments', sans: [{ type: 'uri', value: 'spiffe://acme.test/ns/prod/sa/payments' }], plainKey: true },
    purpose: 'sslclient',
    eku: 'TLS Web Client Authentication, TLS Web Server Authentication',
  },
  { profile: 'ocsp_signer', opts: { profile: 'ocsp_signer', subject: 'CN=Portcullis OCSP Signer', plainKey: true }, purpose: 'ocsphelper', eku: 'OCSP Signing' },
]

describe('CA init and issuing (openssl as judge)', { timeout: 120_000 }, () => {
  let ca: LoadedCa
  let dir: string
  let work: string
  let clock: FixedClock
  let rootPath: string
  let intermediatePath: string

  before(async () => {
    ;({ ca, dir, work, clock } = await newCa())
    rootPath = join(dir, 'root.crt')
    intermediatePath = join(dir, 'intermediate.crt')
  })

  for (const c of cases) {
    it(`issues a ${c.profile} certificate that openssl verifies up to the root for purpose ${c.purpose}`, async () => {
      const issued = await issueCertificate(ca, { ...c.opts, clock })
      const leaf = put(work, `${c.profile}.crt`, issued.certPem)
      const r = openssl(['verify', '-CAfile', rootPath, '-untrusted', intermediatePath, '-purpose', c.purpose, leaf])
      assert.equal(r.status, 0, r.stderr)
      assert.match(r.stdout, /: OK$/m)
      // Signed by the intermediate only: without it there is no path.
      assert.notEqual(openssl(['verify', '-CAfile', rootPath, leaf]).status, 0)
    })

    it(`writes the ${c.profile} profile's extensions exactly`, async () => {
      const issued = await issueCertificate(ca, { ...c.opts, clock })
      const text = x509Text(work, issued.certPem)
      const interText = x509Text(work, ca.intermediate.toString('pem'))
      assert.equal(extension(text, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical\nCA:FALSE')
      assert.equal(extension(text, 'X509v3 Key Usage'), 'X509v3 Key Usage: critical\nDigital Signature')
      assert.equal(extension(text, 'X509v3 Extended Key Usage'), `X509v3 Extended Key Usage:\n${c.eku}`)
      const ski = extension(text, 'X509v3 Subject Key Identifier').split('\n')[1]
      const aki = extension(text, 'X509v3 Authority Key Identifier').split('\n')[1]
      const interSki = extension(interText, 'X509v3 Subject Key Identifier').split('\n')[1]
      assert.match(ski ?? '', /^([0-9A-F]{2}:){19}[0-9A-F]{2}$/)
      assert.equal(aki, interSki)
      assert.notEqual(ski, aki)
      if (c.profile === 'ocsp_signer') {
        assert.match(text, /OCSP No Check/)
        assert.equal(extension(text, 'X509v3 CRL Distribution Points'), '')
        assert.equal(extension(text, 'Authority Information Access'), '')
      } else {
        assert.doesNotMatch(text, /OCSP No Check/)
        assert.match(extension(text, 'X509v3 CRL Distribution Points'), new RegExp(`URI:${urls.crlUrl}$`, 'm'))
        assert.equal(extension(text, 'Authority Information Access'), `Authority Information Access:\nOCSP - URI:${urls.ocspUrl}`)
      }
      const san = extension(text, 'X509v3 Subject Alternative Name')
      const expected = (c.opts.sans ?? []).map((s) => `${s.type === 'dns' ? 'DNS' : s.type === 'ip' ? 'IP Address' : 'URI'}:${s.value}`).join(', ')
      assert.equal(san, expected === '' ? '' : `X509v3 Subject Alternative Name:\n${expected}`)
      assert.equal(issued.record.profile, c.profile)
      assert.equal(issued.record.partner, c.opts.partner)
      assert.deepEqual(issued.record.sans, c.opts.sans ?? [])
    })
  }

  it('makes a root with CA:TRUE pathlen 1 and an intermediate with pathlen 0 and the root URLs', () => {
    const root = x509Text(work, ca.root.toString('pem'))
    const inter = x509Text(work, ca.intermediate.toString('pem'))
    assert.equal(extension(root, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical\nCA:TRUE, pathlen:1')
    assert.equal(extension(inter, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical\nCA:TRUE, pathlen:0')
    for (const t of [root, inter]) assert.equal(extension(t, 'X509v3 Key Usage'), 'X509v3 Key Usage: critical\nCertificate Sign, CRL Sign')
    const rootSki = extension(root, 'X509v3 Subject Key Identifier').split('\n')[1]
    assert.equal(extension(inter, 'X509v3 Authority Key Identifier').split('\n')[1], rootSki)
    assert.match(extension(inter, 'X509v3 CRL Distribution Points'), new RegExp(`URI:${urls.rootCrlUrl}$`, 'm'))
    assert.equal(extension(inter, 'Authority Information Access'), `Authority Information Access:\nOCSP - URI:${urls.rootOcspUrl}`)
    assert.match(root, /Issuer: CN = Portcullis Test Root, O = Portcullis Test/)
    assert.match(root, /Subject: CN = Portcullis Test Root, O = Portcullis Test/)
    const chain = openssl(['verify', '-CAfile', join(dir, 'root.crt'), join(dir, 'intermediate.crt')])
    assert.equal(chain.status, 0, chain.stderr)
    assert.equal(readFileSync(join(dir, 'chain.pem'), 'utf8'), ca.chainPem)
  })

  it('gives 128-bit positive serials, unique over 1000 issues', async () => {
    const serials = new Set<string>()
    for (let i = 0; i < 1000; i++) {
      const { record } = await issueCertificate(ca, { profile: 'client', subject: `CN=c${i}`, plainKey: true, clock })
      assert.match(record.serial, /^[4-7][0-9a-f]{31}$/) // 16 octets, top bit clear
      serials.add(record.serial)
    }
    assert.equal(serials.size, 1000)
    const { certPem, record } = await issueCertificate(ca, { profile: 'client', subject: 'CN=s', plainKey: true, clock })
    assert.equal(openssl(['x509', '-noout', '-serial', '-in', put(work, 'serial.crt', certPem)]).stdout.trim(), `serial=${record.serial.toUpperCase()}`)
  })

  it('stores both CA keys encrypted in 0600 files inside a 0700 folder', () => {
    assert.equal(statSync(dir).mode & 0o777, 0o700)
    for (const name of ['root.key', 'intermediate.key']) {
      const path = join(dir, name)
      assert.equal(statSync(path).mode & 0o777, 0o600)
      assert.match(readFileSync(path, 'utf8'), /^-----BEGIN ENCRYPTED PRIVATE KEY-----/)
      const ok = openssl(['pkey', '-in', path, '-passin', `pass:${passphrase}`, '-noout'])
      assert.equal(ok.status, 0, ok.stderr)
      assert.notEqual(openssl(['pkey', '-in', path, '-passin', 'pass:wrong-passphrase-123456', '-noout']).status, 0)
      assert.notEqual(openssl(['pkey', '-in', path, '-noout']).status, 0) // no passphrase (stdin is empty)
    }
  })

  it('returns an issued key encrypted with the given passphrase, or plain when asked', async () => {
    const enc = await issueCertificate(ca, { profile: 'client', subject: 'CN=enc', keyPassphrase: 'leaf-passphrase-0123456', clock })
    const encPath = put(work, 'enc.key', enc.keyPem)
    assert.match(enc.keyPem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----/)
    assert.equal(openssl(['pkey', '-in', encPath, '-passin', 'pass:leaf-passphrase-0123456', '-noout']).status, 0)
    assert.notEqual(openssl(['pkey', '-in', encPath, '-noout']).status, 0)
    const plain = await issueCertificate(ca, { profile: 'client', subject: 'CN=plain', plainKey: true, clock })
    assert.match(plain.keyPem, /^-----BEGIN PRIVATE KEY-----/)
    // The key belongs to the certificate.
    const certKey = openssl(['x509', '-noout', '-pubkey', '-in', put(work, 'plain.crt', plain.certPem)]).stdout
    const keyPub = openssl(['pkey', '-pubout', '-in', put(work, 'plain.key', plain.keyPem)]).stdout
    assert.equal(certKey, keyPub)
  })

  it('refuses to issue outside a profile: too long, wrong SAN types, partner without its O', async () => {
    const bad: Array<Omit<IssueOptions, 'clock'>> = [
      { profile: 'spiffe', subject: 'CN=x', sans: [{ type: 'uri', value: 'spiffe://td/x' }], validityMs: 31 * DAY_MS, plainKey: true },
      { profile: 'server', subject: 'CN=x', sans: [{ type: 'uri', value: 'spiffe://td/x' }], plainKey: true },
      { profile: 'server', subject: 'CN=x', plainKey: true },
      { profile: 'server', subject: 'CN=x', sans: [{ type: 'dns', value: 'bad..name' }], plainKey: true },
      { profile: 'spiffe', subject: 'CN=x', sans: [{ type: 'uri', value: 'spiffe://td/a' }, { type: 'uri', value: 'spiffe://td/b' }], plainKey: true },
      { profile: 'partner', subject: 'CN=x, O=other', partner: 'globex', plainKey: true },
      { profile: 'client', subject: 'CN=x' }, // neither a key passphrase nor plainKey
      { profile: 'ocsp_signer', subject: 'CN=x', sans: [{ type: 'dns', value: 'a.test' }], plainKey: true },
    ]
    for (const opts of bad) {
      await assert.rejects(issueCertificate(ca, { ...opts, clock }), (err) => isCaError(err, 'issue_invalid'), JSON.stringify(opts))
    }
  })

  it("caps a leaf at the intermediate's end and refuses to issue once the intermediate expired", async () => {
    const short = await newCa({ validity: { rootMs: 10 * DAY_MS, intermediateMs: 2 * DAY_MS } })
    const { record } = await issueCertificate(short.ca, { profile: 'client', subject: 'CN=x', validityMs: 30 * DAY_MS, plainKey: true, clock: short.clock })
    assert.equal(record.notAfter, short.ca.intermediate.notAfter.getTime())
    short.clock.advance(3 * DAY_MS)
    await assert.rejects(issueCertificate(short.ca, { profile: 'client', subject: 'CN=x', plainKey: true, clock: short.clock }), (err) => isCaError(err, 'ca_expired'))
  })

  it('refuses a wrong passphrase with ca_passphrase_invalid and leaves the CA folder unchanged', async () => {
    const before = snapshot(dir)
    await assert.rejects(loadCa({ dir, passphrase: 'not-the-passphrase-0000' }), (err) => isCaError(err, 'ca_passphrase_invalid'))
    await assert.rejects(exportAndRemoveRootKey({ dir, passphrase: 'not-the-passphrase-0000', target: join(work, 'x.key') }), (err) => isCaError(err, 'ca_passphrase_invalid'))
    assert.deepEqual(snapshot(dir), before)
    assert.equal(existsSync(join(work, 'x.key')), false)
    const again = await loadCa({ dir, passphrase })
    assert.equal(again.intermediate.serialNumber, ca.intermediate.serialNumber)
  })

  it('refuses to init over an existing CA and changes nothing', async () => {
    const before = snapshot(dir)
    await assert.rejects(
      initCa({ dir, passphrase, clock, rootSubject: 'CN=Other Root', intermediateSubject: 'CN=Other Issuing' }),
      (err) => isCaError(err, 'ca_exists'),
    )
    assert.deepEqual(snapshot(dir), before)
  })

  it('refuses a short passphrase, equal subjects and non-http URLs before writing anything', async () => {
    const fresh = join(tempDir(), 'ca')
    const base = { dir: fresh, passphrase, clock, rootSubject: 'CN=R', intermediateSubject: 'CN=I' }
    await assert.rejects(initCa({ ...base, passphrase: 'short' }), (err) => isCaError(err, 'ca_passphrase_too_short'))
    await assert.rejects(initCa({ ...base, intermediateSubject: 'CN=R' }), (err) => isCaError(err, 'ca_config_invalid'))
    await assert.rejects(initCa({ ...base, urls: { crlUrl: 'ldap://x/crl' } }), (err) => isCaError(err, 'ca_config_invalid'))
    assert.equal(existsSync(fresh), false)
  })

  it('refuses a plaintext CA key instead of using it', async () => {
    const other = await newCa()
    const plain = openssl(['pkey', '-in', join(other.dir, 'intermediate.key'), '-passin', `pass:${passphrase}`]).stdout
    writeFileSync(join(other.dir, 'intermediate.key'), plain, { mode: 0o600 })
    await assert.rejects(loadCa({ dir: other.dir, passphrase }), (err) => isCaError(err, 'ca_key_not_encrypted'))
  })
})

describe('root key export', { timeout: 60_000 }, () => {
  it('moves the root key offline; issuing keeps working and the chain still verifies', async () => {
    const { dir, work, clock } = await newCa()
    const target = join(work, 'offline-root.key')
    const original = readFileSync(join(dir, 'root.key'), 'utf8')
    await exportAndRemoveRootKey({ dir, passphrase, target })
    assert.equal(existsSync(join(dir, 'root.key')), false)
    assert.equal(readFileSync(target, 'utf8'), original)
    assert.equal(statSync(target).mode & 0o777, 0o600)
    // The exported key opens with the passphrase and is the root's key.
    const keyPub = openssl(['pkey', '-in', target, '-passin', `pass:${passphrase}`, '-pubout'])
    assert.equal(keyPub.status, 0, keyPub.stderr)
    assert.equal(keyPub.stdout, openssl(['x509', '-noout', '-pubkey', '-in', join(dir, 'root.crt')]).stdout)

    const ca = await loadCa({ dir, passphrase })
    assert.equal(ca.hasRootKey, false)
    const issued = await issueCertificate(ca, { profile: 'server', subject: 'CN=after', sans: [{ type: 'dns', value: 'after.test' }], plainKey: true, clock })
    const r = openssl(['verify', '-CAfile', join(dir, 'root.crt'), '-untrusted', join(dir, 'intermediate.crt'), put(work, 'after.crt', issued.certPem)])
    assert.equal(r.status, 0, r.stderr)

    await assert.rejects(exportAndRemoveRootKey({ dir, passphrase, target: join(work, 'again.key') }), (err) => isCaError(err, 'ca_root_key_absent'))
  })

  it('refuses to overwrite an existing export target and keeps the root key', async () => {
    const { dir, work } = await newCa()
    const target = put(work, 'occupied.key', 'something else')
    const before = snapshot(dir)
    await assert.rejects(exportAndRemoveRootKey({ dir, passphrase, target }), (err) => isCaError(err, 'ca_export_target_exists'))
    assert.deepEqual(snapshot(dir), before)
    assert.equal(readFileSync(target, 'utf8'), 'something else')
  })
})

describe('key algorithms', { timeout: 120_000 }, () => {
  const expectations: ReadonlyArray<{ algorithm: KeyAlgorithmName; key: RegExp; signature: string }> = [
    { algorithm: 'ec-p256', key: /NIST CURVE: P-256/, signature: 'ecdsa-with-SHA256' },
    { algorithm: 'ec-p384', key: /NIST CURVE: P-384/, signature: 'ecdsa-with-SHA384' },
    { algorithm: 'rsa-3072', key: /Public-Key: \(3072 bit\)/, signature: 'sha256WithRSAEncryption' },
    { algorithm: 'rsa-4096', key: /Public-Key: \(4096 bit\)/, signature: 'sha384WithRSAEncryption' },
  ]
  for (const e of expectations) {
    it(`builds a ${e.algorithm} CA whose chain and leaves openssl verifies`, async () => {
      const { ca, dir, work, clock } = await newCa({ keyAlgorithm: e.algorithm })
      const inter = x509Text(work, ca.intermediate.toString('pem'))
      assert.match(inter, e.key)
      assert.match(inter, new RegExp(`Signature Algorithm: ${e.signature}`))
      const issued = await issueCertificate(ca, { profile: 'server', subject: 'CN=k', sans: [{ type: 'dns', value: 'k.test' }], keyAlgorithm: e.algorithm, plainKey: true, clock })
      const leafText = x509Text(work, issued.certPem)
      assert.match(leafText, e.key)
      assert.match(leafText, new RegExp(`Signature Algorithm: ${e.signature}`))
      const r = openssl(['verify', '-CAfile', join(dir, 'root.crt'), '-untrusted', join(dir, 'intermediate.crt'), put(work, 'k.crt', issued.certPem)])
      assert.equal(r.status, 0, r.stderr)
      assert.equal(JSON.parse(readFileSync(join(dir, 'ca.json'), 'utf8')).keyAlgorithm, e.algorithm)
    })
  }
})
