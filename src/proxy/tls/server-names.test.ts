import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { ServerNameTable, representative } from './server-names.js'

describe('ServerNameTable', { timeout: 5_000 }, () => {
  const table = new ServerNameTable([
    { patterns: ['api.example.com', '*.example.com'], value: 'wild' },
    { patterns: ['exact.example.com'], value: 'exact' },
  ])

  it('prefers an exact name over a wildcard', () => {
    assert.equal(table.lookup('exact.example.com'), 'exact')
    assert.equal(table.lookup('api.example.com'), 'wild')
  })

  it('matches a wildcard for exactly one label (RFC 6125 6.4.3)', () => {
    assert.equal(table.lookup('x.example.com'), 'wild')
    assert.equal(table.lookup('example.com'), undefined)
    assert.equal(table.lookup('y.x.example.com'), undefined)
  })

  it('never treats a client-sent "*" as a wildcard, nor odd characters as names', () => {
    assert.equal(table.lookup('*.example.com'), undefined)
    assert.equal(table.lookup('x.example.com.'), undefined)
    assert.equal(table.lookup('x .example.com'), undefined)
    assert.equal(table.lookup(''), undefined)
  })

  it('reports patterns listed twice', () => {
    const dup = new ServerNameTable([
      { patterns: ['a.example'], value: 1 },
      { patterns: ['b.example', 'a.example'], value: 2 },
    ])
    assert.deepEqual(dup.duplicates, [{ pattern: 'a.example', index: 1, position: 1 }])
    assert.equal(dup.lookup('a.example'), 1)
  })

  it('gives a concrete name that each pattern covers', () => {
    assert.equal(table.lookup(representative('*.example.com')), 'wild')
    assert.equal(representative('a.example'), 'a.example')
  })
})
