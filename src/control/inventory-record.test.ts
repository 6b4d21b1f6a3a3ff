import assert from 'node:assert/strict'
import { test } from 'node:test'
import { toInventoryRecord } from './inventory-record.js'

const base = { serial: 'ab', subject: 'CN=x', profile: 'partner' as const, notBefore: 1, notAfter: 2, fingerprint256: 'f'.repeat(64), pem: 'PEM' }

test('writes SANs in openssl spelling and keeps the partner', () => {
  const row = toInventoryRecord({
    ...base,
    partner: 'globex',
    sans: [
      { type: 'dns', value: 'a.test' },
      { type: 'ip', value: '10.0.0.1' },
      { type: 'uri', value: 'spiffe://td/x' },
      { type: 'email', value: 'a@b.test' },
    ],
  })
  assert.deepEqual(row.sans, ['DNS:a.test', 'IP:10.0.0.1', 'URI:spiffe://td/x', 'email:a@b.test'])
  assert.equal(row.partner, 'globex')
  assert.equal(row.serial, 'ab')
})

test('leaves the partner out when there is none', () => {
  assert.equal('partner' in toInventoryRecord({ ...base, sans: [] }), false)
})
