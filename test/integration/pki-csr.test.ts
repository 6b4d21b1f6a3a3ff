/**
 * Signing partner CSRs made by `openssl req`: proof of possession, key
 * policy, name policy, lifetime, and that nothing but the SANs and one CN is
 * taken from the request. Each refusal is asserted by its rule code.
 */
import { strict as assert } from 'node:assert'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { signCsr } from '../../src/pki/ca-sign-csr.js'
import type { SignCsrOptions } from '../../src/pki/ca-sign-csr.js'
import { compilePartnerPolicy, csrRefusalRules } from '../../src/pki/policy.js'
import type { CsrRefusalRule, PartnerPolicy } from '../../src/pki/policy.js'
import type { FixedClock } from '../../src/shared/clock.js'
import { extension, newCa, openssl, put, x509Text } from './pki-helpers.js'

const DAY_MS = 86_400_000

const policy: PartnerPolicy = {
  name: 'globex',
  allowedProfiles: ['partner', 'spiffe', 'server'],
  allowedDnsNames: ['api.globex.test', '*.svc.globex.test'],
  allowedSpiffePrefixes: ['spiffe://globex.test/ns/prod'],
  maxLifetimeMs: 30 * DAY_MS,
}

interface CsrSpec {
  readonly key?: 'ec' | 'ec384' | 'ec521' | 'secp256k1' | 'rsa1024' | 'rsa2048' | 'ed25519'
  readonly subject?: string
  readonly san?: string
  readonly extra?: readonly string[]
  readonly digest?: string
}

describe('signCsr with openssl-made CSRs', { timeout: 120_000 }, () => {
  let ca: LoadedCa
  let dir: string
  let work: string
  let clock: FixedClock
  let n = 0
  const seen = new Set<CsrRefusalRule>()

  before(async () => {
    ;({ ca, dir, work, clock } = await newCa())
  })

  after(() => {
    // Every rule in the table is exercised by some test below.
    assert.deepEqual([...seen].sort(), Object.keys(csrRefusalRules).sort())
  })

  function csr(spec: CsrSpec = {}): string {
    const i = ++n
    const key = join(work, `csr-${i}.key`)
    const keyArgs: Record<NonNullable<CsrSpec['key']>, string[]> = {
      ec: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'],
      ec384: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'],
      ec521: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-521'],
      secp256k1: ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:secp256k1'],
      rsa1024: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:1024'],
      rsa2048: ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'],
      ed25519: ['-algorithm', 'ED25519'],
    }
    const g = openssl(['genpkey', ...keyArgs[spec.key ?? 'ec'], '-out', key])
    assert.equal(g.status, 0, g.stderr)
    const args = ['req', '-new', '-key', key, '-subj', spec.subject ?? '/CN=api.globex.test', '-out', join(work, `csr-${i}.pem`)]
    if (spec.san) args.push('-addext', `subjectAltName=${spec.san}`)
    for (const e of spec.extra ?? []) args.push('-addext', e)
    if (spec.digest) args.push(`-${spec.digest}`)
    const r = openssl(args)
    assert.equal(r.status, 0, r.stderr)
    return readFileSync(join(work, `csr-${i}.pem`), 'utf8')
  }

  async function refused(csrPem: string, rule: CsrRefusalRule, opts: Partial<SignCsrOptions> = {}): Promise<void> {
    const result = await signCsr(ca, csrPem, { profile: 'partner', partnerPolicy: policy, clock, ...opts })
    assert.equal(result.ok, false, `expected refusal ${rule}`)
    if (!result.ok) {
      assert.equal(result.rule, rule, result.detail)
      seen.add(result.rule)
    }
  }

  async function signed(csrPem: string, opts: Partial<SignCsrOptions> = {}): Promise<{ certPem: string; text: string }> {
    const result = await signCsr(ca, csrPem, { profile: 'partner', partnerPolicy: policy, clock, ...opts })
    assert.ok(result.ok, result.ok ? '' : `${result.rule}: ${result.detail}`)
    const leaf = put(work, `signed-${++n}.crt`, result.certPem)
    const v = openssl(['verify', '-CAfile', join(dir, 'root.crt'), '-untrusted', join(dir, 'intermediate.crt'), leaf])
    assert.equal(v.status, 0, v.stderr)
    assert.equal(result.record.partner, 'globex')
    return { certPem: result.certPem, text: x509Text(work, result.certPem) }
  }

  it('signs an EC P-256 CSR; the subject is O=<partner>, CN from the CSR', async () => {
    const { text } = await signed(csr({ subject: '/CN=api.globex.test/O=Initech/OU=spoofed', san: 'DNS:api.globex.test' }))
    assert.match(text, /Subject: O = globex, CN = api.globex.test$/m)
    assert.equal(extension(text, 'X509v3 Subject Alternative Name'), 'X509v3 Subject Alternative Name:\nDNS:api.globex.test')
    assert.equal(extension(text, 'X509v3 Extended Key Usage'), 'X509v3 Extended Key Usage:\nTLS Web Client Authentication')
  })

  it('signs RSA 2048 and EC P-384 CSRs', async () => {
    assert.match((await signed(csr({ key: 'rsa2048' }))).text, /Public-Key: \(2048 bit\)/)
    assert.match((await signed(csr({ key: 'ec384' }))).text, /NIST CURVE: P-384/)
  })

  it('refuses an RSA 1024 CSR as key_too_weak', async () => {
    await refused(csr({ key: 'rsa1024' }), 'key_too_weak')
  })

  it('refuses P-521, secp256k1 and Ed25519 keys, and key types the policy excludes', async () => {
    await refused(csr({ key: 'ec521' }), 'key_type_not_allowed')
    await refused(csr({ key: 'secp256k1' }), 'key_type_not_allowed')
    await refused(csr({ key: 'ed25519' }), 'key_type_not_allowed')
    await refused(csr({ key: 'rsa2048' }), 'key_type_not_allowed', { partnerPolicy: { ...policy, allowedKeyTypes: ['ec-p256'] } })
    await refused(csr({ key: 'rsa2048' }), 'key_too_weak', { partnerPolicy: { ...policy, minRsaBits: 3072 } })
  })

  it('refuses a CSR whose signed content was altered (forged signature)', async () => {
    const pem = csr({ subject: '/CN=aaaa.svc.globex.test' })
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64')
    const at = der.indexOf('aaaa.svc')
    assert.ok(at > 0)
    der.write('bbbb', at, 'latin1')
    const forged = `-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64').replace(/.{64}/g, '$&\n')}\n-----END CERTIFICATE REQUEST-----\n`
    await refused(forged, 'csr_signature_invalid')
  })

  it('refuses a CSR signed with SHA-1', async () => {
    await refused(csr({ digest: 'sha1' }), 'csr_signature_algorithm_weak')
  })

  it('refuses input that is not one PEM CSR', async () => {
    await refused('hello', 'csr_malformed')
    await refused('-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n', 'csr_malformed')
    await refused(ca.intermediate.toString('pem'), 'csr_malformed')
  })

  it('refuses a CSR asking for CA:TRUE', async () => {
    await refused(csr({ extra: ['basicConstraints=critical,CA:TRUE'] }), 'ca_requested')
  })

  it('copies no requested extension but the SANs', async () => {
    const { text } = await signed(
      csr({ san: 'DNS:api.globex.test', extra: ['keyUsage=critical,keyCertSign,digitalSignature', 'extendedKeyUsage=codeSigning', 'basicConstraints=CA:FALSE,pathlen:3', 'nsComment=injected', '1.2.3.4.5=ASN1:UTF8String:evil'] }),
    )
    assert.equal(extension(text, 'X509v3 Key Usage'), 'X509v3 Key Usage: critical\nDigital Signature')
    assert.equal(extension(text, 'X509v3 Extended Key Usage'), 'X509v3 Extended Key Usage:\nTLS Web Client Authentication')
    assert.equal(extension(text, 'X509v3 Basic Constraints'), 'X509v3 Basic Constraints: critical\nCA:FALSE')
    assert.doesNotMatch(text, /injected|evil|1\.2\.3\.4\.5|Code Signing|Netscape/)
  })

  it('allows exact DNS names and names below a *.suffix, nothing else', async () => {
    await signed(csr({ subject: '/CN=a.svc.globex.test', san: 'DNS:a.svc.globex.test,DNS:x.y.svc.globex.test' }))
    await refused(csr({ subject: '/CN=api.globex.test', san: 'DNS:svc.globex.test' }), 'dns_name_not_allowed')
    await refused(csr({ subject: '/CN=api.globex.test', san: 'DNS:a.svcXglobex.test' }), 'dns_name_not_allowed')
    await refused(csr({ subject: '/CN=api.globex.test', san: 'DNS:evil-api.globex.test' }), 'dns_name_not_allowed')
    // A wildcard certificate needs an entry for exactly that wildcard.
    await signed(csr({ subject: '/CN=api.globex.test', san: 'DNS:*.svc.globex.test' }))
    await refused(csr({ subject: '/CN=api.globex.test', san: 'DNS:*.globex.test' }), 'dns_name_not_allowed')
    await refused(csr({ subject: '/CN=api.globex.test', san: 'DNS:*.a.svc.globex.test' }), 'dns_name_not_allowed')
    await refused(csr({ subject: '/CN=api.globex.test', san: 'DNS:bad_name.svc.globex.test' }), 'dns_name_invalid')
  })

  it('allows SPIFFE ids under a prefix at a path-segment boundary only', async () => {
    await signed(csr({ subject: '/CN=api.globex.test', san: 'URI:spiffe://globex.test/ns/prod/sa/a' }), { profile: 'spiffe' })
    await signed(csr({ subject: '/CN=api.globex.test', san: 'URI:spiffe://globex.test/ns/prod' }), { profile: 'spiffe' })
    await refused(csr({ subject: '/CN=api.globex.test', san: 'URI:spiffe://globex.test/ns/production' }), 'spiffe_id_not_allowed', { profile: 'spiffe' })
    await refused(csr({ subject: '/CN=api.globex.test', san: 'URI:spiffe://initech.test/ns/prod/a' }), 'spiffe_id_not_allowed', { profile: 'spiffe' })
    await refused(csr({ subject: '/CN=api.globex.test', san: 'URI:spiffe://globex.test/ns/prod/../admin' }), 'spiffe_id_invalid', { profile: 'spiffe' })
    await refused(csr({ subject: '/CN=api.globex.test', san: 'URI:spiffe://globex.test/ns/prod/a,URI:spiffe://globex.test/ns/prod/b' }), 'spiffe_id_count', {
      profile: 'spiffe',
    })
  })

  it('refuses IP and email SANs, a server CSR without a DNS name, and a CSR with no name at all', async () => {
    await refused(csr({ san: 'IP:10.0.0.1' }), 'san_type_not_allowed')
    await refused(csr({ san: 'email:a@globex.test' }), 'san_type_not_allowed', { profile: 'server' })
    await refused(csr({ subject: '/CN=api.globex.test' }), 'names_missing', { profile: 'server' })
    await refused(csr({ subject: '/O=globex' }), 'names_missing')
  })

  it('refuses a CN that is neither a granted SAN nor an allowed name', async () => {
    await refused(csr({ subject: '/CN=admin', san: 'DNS:api.globex.test' }), 'subject_not_allowed')
    await signed(csr({ subject: '/CN=billing-client' }), { partnerPolicy: { ...policy, allowedCommonNames: ['billing-client'] } })
  })

  it('refuses profiles the partner may not request', async () => {
    await refused(csr(), 'profile_not_allowed', { profile: 'ocsp_signer' })
    await refused(csr(), 'profile_not_allowed', { profile: 'server', partnerPolicy: { ...policy, allowedProfiles: undefined } })
  })

  it("caps the lifetime at the partner's maximum and refuses longer requests", async () => {
    const r = await signCsr(ca, csr(), { profile: 'partner', partnerPolicy: policy, clock })
    assert.ok(r.ok)
    const lifetime = r.record.notAfter - clock.now()
    assert.ok(lifetime <= 30 * DAY_MS && lifetime > 30 * DAY_MS - 1000, String(lifetime)) // X.509 times have whole seconds
    await refused(csr(), 'lifetime_too_long', { validityMs: 31 * DAY_MS })
    await refused(csr({ san: 'URI:spiffe://globex.test/ns/prod/a' }), 'lifetime_too_long', { validityMs: 2 * DAY_MS, profile: 'spiffe', partnerPolicy: { ...policy, maxLifetimeMs: DAY_MS } })
  })

  it('checks the signature before any policy rule', async () => {
    // A forged RSA-1024 CSR is refused for its signature, not its key.
    const pem = csr({ key: 'rsa1024', subject: '/CN=aaaa.svc.globex.test' })
    const der = Buffer.from(pem.replace(/-----[^-]+-----/g, '').replace(/\s/g, ''), 'base64')
    der.write('bbbb', der.indexOf('aaaa.svc'), 'latin1')
    await refused(`-----BEGIN CERTIFICATE REQUEST-----\n${der.toString('base64')}\n-----END CERTIFICATE REQUEST-----\n`, 'csr_signature_invalid')
  })

  it('accepts a compiled policy and rejects a bad one at compile time', () => {
    assert.throws(() => compilePartnerPolicy({ name: 'x', allowedDnsNames: ['*.test'] }), { code: 'ca_config_invalid' })
    assert.throws(() => compilePartnerPolicy({ name: 'x', minRsaBits: 1024 }), { code: 'ca_config_invalid' })
    assert.throws(() => compilePartnerPolicy({ name: 'x', allowedSpiffePrefixes: ['https://x'] }), { code: 'ca_config_invalid' })
    const compiled = compilePartnerPolicy(policy)
    assert.equal(compilePartnerPolicy(compiled), compiled)
  })
})
