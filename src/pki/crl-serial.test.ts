import assert from 'node:assert/strict'
import { describe, test } from 'node:test'
import { normalizeSerialHex, serialHexFromInteger } from './crl-serial.js'

describe('normalizeSerialHex', () => {
  test('maps openssl, colon and 0x spellings to one lowercase even-length form', () => {
    assert.equal(normalizeSerialHex('0A1B'), '0a1b')
    assert.equal(normalizeSerialHex('a1b'), '0a1b')
    assert.equal(normalizeSerialHex('00:0a:1b'), '0a1b')
    assert.equal(normalizeSerialHex('0x0A1B'), '0a1b')
    assert.equal(normalizeSerialHex(' ff01 '), 'ff01')
  })

  test('refuses zero, non-hex and serials longer than 20 octets', () => {
    assert.equal(normalizeSerialHex('0'), undefined)
    assert.equal(normalizeSerialHex(''), undefined)
    assert.equal(normalizeSerialHex('12g4'), undefined)
    assert.equal(normalizeSerialHex('-1'), undefined)
    assert.equal(normalizeSerialHex('01'.repeat(20)), '01'.repeat(20))
    assert.equal(normalizeSerialHex('01'.repeat(21)), undefined)
  })
})

describe('serialHexFromInteger', () => {
  test('strips the DER sign octet of a positive integer', () => {
    assert.equal(serialHexFromInteger(Uint8Array.from([0x00, 0xff, 0x01])), 'ff01')
    assert.equal(serialHexFromInteger(Uint8Array.from([0x7f])), '7f')
  })

  test('refuses negative, zero and empty integers', () => {
    assert.equal(serialHexFromInteger(Uint8Array.from([0xff, 0x01])), undefined)
    assert.equal(serialHexFromInteger(Uint8Array.from([0x00])), undefined)
    assert.equal(serialHexFromInteger(new Uint8Array(0)), undefined)
  })
})
