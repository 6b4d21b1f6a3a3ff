import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { dnsNameAllowed, isDnsName, isSpiffeId, spiffeIdAllowed } from './ca-names.js'

describe('ca-names', () => {
  it('accepts lower-case host names and one leading wildcard label only', () => {
    for (const ok of ['localhost', 'a.example.com', 'x-1.b2.example.com', '*.svc.example.com']) assert.equal(isDnsName(ok), true, ok)
    for (const bad of ['', 'A.example.com', 'a..b', 'a.example.com.', '-a.example.com', 'a-.example.com', '*.com', 'a.*.example.com', '127.0.0.1', 'a_b.example.com', `${'a'.repeat(64)}.com`]) {
      assert.equal(isDnsName(bad), false, bad)
    }
  })

  it('matches *.suffix at any depth below the suffix but not the suffix itself', () => {
    assert.equal(dnsNameAllowed('*.example.com', 'a.example.com'), true)
    assert.equal(dnsNameAllowed('*.example.com', 'a.b.example.com'), true)
    assert.equal(dnsNameAllowed('*.example.com', 'example.com'), false)
    assert.equal(dnsNameAllowed('*.example.com', 'badexample.com'), false)
    assert.equal(dnsNameAllowed('api.example.com', 'api.example.com'), true)
    assert.equal(dnsNameAllowed('api.example.com', 'x.api.example.com'), false)
    // A requested wildcard needs exactly that entry.
    assert.equal(dnsNameAllowed('*.example.com', '*.example.com'), true)
    assert.equal(dnsNameAllowed('*.example.com', '*.a.example.com'), false)
  })

  it('validates SPIFFE ids strictly', () => {
    for (const ok of ['spiffe://td', 'spiffe://td/a', 'spiffe://td.example/ns/a_b/c-d.e']) assert.equal(isSpiffeId(ok), true, ok)
    for (const bad of ['spiffe://TD/a', 'spiffe://td/', 'spiffe://td//a', 'spiffe://td/./a', 'spiffe://td/../a', 'spiffe://td/a%20b', 'spiffe://td/a?x', 'spiffe://td:443/a', 'spiffe://u@td/a', 'https://td/a']) {
      assert.equal(isSpiffeId(bad), false, bad)
    }
  })

  it('matches SPIFFE prefixes at a path-segment boundary', () => {
    assert.equal(spiffeIdAllowed('spiffe://td/ns/a', 'spiffe://td/ns/a'), true)
    assert.equal(spiffeIdAllowed('spiffe://td/ns/a', 'spiffe://td/ns/a/x'), true)
    assert.equal(spiffeIdAllowed('spiffe://td/ns/a', 'spiffe://td/ns/ab'), false)
    assert.equal(spiffeIdAllowed('spiffe://td', 'spiffe://td/anything'), true)
    assert.equal(spiffeIdAllowed('spiffe://td', 'spiffe://td2/x'), false)
  })
})
