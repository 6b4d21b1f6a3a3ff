import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { checkKey, checkLifetime, checkProfileSans, compilePartnerPolicy, csrRefusalRules } from './policy.js'
import { profiles } from './profiles.js'

const DAY_MS = 86_400_000

describe('partner policy', () => {
  const policy = compilePartnerPolicy({ name: 'acme', allowedKeyTypes: ['ec-p256', 'rsa'], maxLifetimeMs: 10 * DAY_MS })

  it('has stable snake_case refusal codes', () => {
    for (const code of Object.keys(csrRefusalRules)) assert.match(code, /^[a-z][a-z0-9]*(_[a-z0-9]+)*$/)
  })

  it('allows RSA from 2048 bits, P-256 and P-384 only as the policy permits', () => {
    assert.equal(checkKey(policy, { type: 'rsa', modulusLength: 2048 }), undefined)
    assert.equal(checkKey(policy, { type: 'rsa', modulusLength: 2047 })?.rule, 'key_too_weak')
    assert.equal(checkKey(policy, { type: 'rsa', modulusLength: 16384 })?.rule, 'key_type_not_allowed')
    assert.equal(checkKey(policy, { type: 'ec', namedCurve: 'prime256v1' }), undefined)
    assert.equal(checkKey(policy, { type: 'ec', namedCurve: 'secp384r1' })?.rule, 'key_type_not_allowed') // not in this policy
    assert.equal(checkKey(policy, { type: 'ec', namedCurve: 'secp521r1' })?.rule, 'key_type_not_allowed')
    assert.equal(checkKey(policy, { type: 'rsa-pss', modulusLength: 4096 })?.rule, 'key_type_not_allowed')
    assert.equal(checkKey(policy, { type: 'ed25519' })?.rule, 'key_type_not_allowed')
  })

  it("takes the smaller of the profile's and the partner's maximum lifetime", () => {
    assert.deepEqual(checkLifetime(policy, 'partner', undefined), { ok: true, validityMs: 10 * DAY_MS })
    assert.deepEqual(checkLifetime(policy, 'spiffe', undefined), { ok: true, validityMs: profiles.spiffe.defaultValidityMs })
    assert.equal(checkLifetime(policy, 'partner', 11 * DAY_MS).ok, false)
    assert.equal(checkLifetime(policy, 'partner', 0).ok, false)
    const open = compilePartnerPolicy({ name: 'open' })
    assert.equal(checkLifetime(open, 'spiffe', 31 * DAY_MS).ok, false)
  })

  it('enforces each profile\'s SAN shape', () => {
    assert.equal(checkProfileSans('server', [])?.rule, 'names_missing')
    assert.equal(checkProfileSans('server', [{ type: 'ip', value: '::1' }]), undefined)
    assert.equal(checkProfileSans('server', [{ type: 'ip', value: '1.2.3' }])?.rule, 'san_type_not_allowed')
    assert.equal(checkProfileSans('spiffe', [{ type: 'dns', value: 'a.test' }])?.rule, 'spiffe_id_count')
    assert.equal(checkProfileSans('client', [{ type: 'uri', value: 'https://x.test/' }])?.rule, 'spiffe_id_invalid')
    assert.equal(checkProfileSans('ocsp_signer', [{ type: 'dns', value: 'a.test' }])?.rule, 'san_type_not_allowed')
  })

  it('refuses bad policies when compiled', () => {
    for (const bad of [
      { name: '' },
      { name: 'x', allowedDnsNames: ['Bad Name'] },
      { name: 'x', allowedDnsNames: ['*.com'] },
      { name: 'x', minRsaBits: 1024 },
      { name: 'x', maxLifetimeMs: -1 },
      { name: 'x', allowedProfiles: ['root' as never] },
    ]) {
      assert.throws(() => compilePartnerPolicy(bad), { code: 'ca_config_invalid' }, JSON.stringify(bad))
    }
    assert.deepEqual(compilePartnerPolicy({ name: 'x', allowedSpiffePrefixes: ['spiffe://td/ns/'] }).allowedSpiffePrefixes, ['spiffe://td/ns'])
  })
})
