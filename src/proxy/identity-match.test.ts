import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from '../config/issues.js'
import { identitiesSchema, type IdentitiesConfig } from '../config/schema/identities.js'
import type { Identity } from './context.js'
import { compileIdentityMatchers } from './identity-match.js'

const FP = 'ab'.repeat(32)
const ISSUER_FP = 'cd'.repeat(32)

/** A parsed certificate as the TLS layer would hand it over; only the fields matchers read matter. */
function identity(over: Partial<Omit<Identity, 'san'>> & { san?: Partial<Identity['san']> } = {}): Identity {
  const { san, ...rest } = over
  return {
    subject: 'CN=svc,O=Acme',
    subjectFields: { CN: ['svc'], O: ['Acme'] },
    issuer: 'CN=ca',
    serialNumber: '01',
    fingerprint256: FP,
    notBefore: 0,
    notAfter: 1,
    der: Buffer.alloc(0),
    chainDer: [],
    ...rest,
    san: { dns: [], uri: [], email: [], ip: [], ...san },
  }
}

/** Parses through the real schema, so config-side normalisation (fingerprints) is covered too. */
const compile = (cfg: unknown) => compileIdentityMatchers(identitiesSchema.parse(cfg))
const matches = (cfg: unknown, id: Identity) => compile(cfg)(id).length > 0

test('spiffePrefix matches at a path-segment boundary only', () => {
  const cfg = { ns: [{ spiffePrefix: 'spiffe://td/ns/a' }] }
  const withId = (spiffeId: string | undefined) => identity(spiffeId === undefined ? {} : { spiffeId })
  assert.equal(matches(cfg, withId('spiffe://td/ns/a')), true)
  assert.equal(matches(cfg, withId('spiffe://td/ns/a/x')), true)
  assert.equal(matches(cfg, withId('spiffe://td/ns/a/x/y')), true)
  assert.equal(matches(cfg, withId('spiffe://td/ns/ab')), false)
  assert.equal(matches(cfg, withId('spiffe://td/ns')), false)
  assert.equal(matches(cfg, withId('spiffe://td2/ns/a')), false)
  assert.equal(matches(cfg, withId(undefined)), false)
  assert.equal(matches({ ns: [{ spiffePrefix: 'spiffe://td/ns/a/' }] }, withId('spiffe://td/ns/a/x')), true)
  assert.equal(matches({ ns: [{ spiffePrefix: 'spiffe://td/ns/a/' }] }, withId('spiffe://td/ns/ab')), false)
})

test('spiffeId matches exactly, and not a URI SAN when the certificate has no single SPIFFE id', () => {
  const cfg = { svc: [{ spiffeId: 'spiffe://td/svc' }] }
  assert.equal(matches(cfg, identity({ spiffeId: 'spiffe://td/svc' })), true)
  assert.equal(matches(cfg, identity({ spiffeId: 'spiffe://td/svc/x' })), false)
  assert.equal(matches(cfg, identity({ spiffeId: 'spiffe://td/SVC' })), false)
  assert.equal(matches(cfg, identity({ san: { uri: ['spiffe://td/svc', 'spiffe://td/other'] } })), false)
})

test('dns matches case-insensitively; "*.suffix" matches exactly one label', () => {
  const exact = { d: [{ dns: 'API.example.com' }] }
  assert.equal(matches(exact, identity({ san: { dns: ['api.EXAMPLE.com'] } })), true)
  assert.equal(matches(exact, identity({ san: { dns: ['x.api.example.com'] } })), false)
  assert.equal(matches(exact, identity({ san: { dns: ['*.example.com'] } })), false) // a wildcard cert is not the named host
  const wild = { d: [{ dns: '*.example.com' }] }
  assert.equal(matches(wild, identity({ san: { dns: ['other.org', 'a.example.com'] } })), true)
  assert.equal(matches(wild, identity({ san: { dns: ['A-1.Example.COM'] } })), true)
  assert.equal(matches(wild, identity({ san: { dns: ['a.b.example.com'] } })), false)
  assert.equal(matches(wild, identity({ san: { dns: ['example.com'] } })), false)
  assert.equal(matches(wild, identity({ san: { dns: ['.example.com'] } })), false)
  assert.equal(matches(wild, identity({ san: { dns: ['*.example.com'] } })), false)
  assert.equal(matches(wild, identity({ san: { dns: ['aexample.com'] } })), false)
})

test('email matches case-insensitively and uri exactly', () => {
  assert.equal(matches({ e: [{ email: 'Ops@Example.com' }] }, identity({ san: { email: ['ops@example.COM'] } })), true)
  assert.equal(matches({ e: [{ email: 'ops@example.com' }] }, identity({ san: { email: ['dev@example.com'] } })), false)
  assert.equal(matches({ u: [{ uri: 'urn:acme:svc' }] }, identity({ san: { uri: ['urn:acme:svc'] } })), true)
  assert.equal(matches({ u: [{ uri: 'urn:acme:svc' }] }, identity({ san: { uri: ['urn:acme:SVC'] } })), false)
})

test('subject needs every listed attribute with an exact value (any of repeated values)', () => {
  const cfg = { s: [{ subject: { CN: 'svc', OU: 'payments' } }] }
  assert.equal(matches(cfg, identity({ subjectFields: { CN: ['svc'], OU: ['ops', 'payments'] } })), true)
  assert.equal(matches(cfg, identity({ subjectFields: { CN: ['svc'] } })), false)
  assert.equal(matches(cfg, identity({ subjectFields: { CN: ['SVC'], OU: ['payments'] } })), false)
  assert.equal(matches(cfg, identity({ subjectFields: { CN: ['svc2'], OU: ['payments'] } })), false)
})

test('fingerprint pins compare the normalised SHA-256 exactly', () => {
  const colons = FP.toUpperCase().match(/../g)!.join(':')
  assert.equal(matches({ f: [{ fingerprint: colons }] }, identity()), true)
  assert.equal(matches({ f: [{ fingerprint: 'ac'.repeat(32) }] }, identity()), false)
  assert.equal(matches({ f: [{ issuerFingerprint: ISSUER_FP }] }, identity({ issuerFingerprint256: ISSUER_FP })), true)
  assert.equal(matches({ f: [{ issuerFingerprint: ISSUER_FP }] }, identity()), false)
})

test('a matcher needs all its fields; an identity needs any of its matchers', () => {
  const cfg = {
    partner: [
      { spiffePrefix: 'spiffe://td/partner', issuerFingerprint: ISSUER_FP },
      { fingerprint: 'ee'.repeat(32) },
    ],
  }
  assert.equal(matches(cfg, identity({ spiffeId: 'spiffe://td/partner/a', issuerFingerprint256: ISSUER_FP })), true)
  assert.equal(matches(cfg, identity({ spiffeId: 'spiffe://td/partner/a' })), false) // wrong issuer: AND fails
  assert.equal(matches(cfg, identity({ fingerprint256: 'ee'.repeat(32) })), true) // second matcher: OR
})

test('returns every matching name in config order', () => {
  const match = compile({
    everyone: [{ subject: { O: 'Acme' } }],
    nobody: [{ dns: 'nope.test' }],
    svc: [{ subject: { CN: 'svc' } }],
  })
  assert.deepEqual(match(identity()), ['everyone', 'svc'])
  assert.deepEqual(match(identity({ subjectFields: { CN: ['x'] } })), [])
})

test('caches names per Identity object', () => {
  const match = compile({ svc: [{ subject: { CN: 'svc' } }] })
  const id = identity()
  const first = match(id)
  assert.equal(match(id), first)
  assert.ok(Object.isFrozen(first))
  const other = match(identity())
  assert.notEqual(other, first)
  assert.deepEqual(other, first)
})

test('refuses matchers that would match every certificate', () => {
  for (const cfg of [{ any: [{}] }, { any: [{ subject: {} }] }]) {
    assert.throws(
      () => compileIdentityMatchers(cfg as unknown as IdentitiesConfig),
      (err: unknown) => err instanceof ConfigError && err.issues[0]!.path[0] === 'identities' && err.issues[0]!.path[1] === 'any',
    )
  }
})
