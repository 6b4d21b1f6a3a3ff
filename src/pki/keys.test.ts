import { strict as assert } from 'node:assert'
import { describe, it } from 'node:test'
import { decryptPrivateKey, encryptPrivateKey, generateKey, keyAlgorithmOf, plainPrivateKey, spkiOf } from './keys.js'
import { randomSerial } from './serial.js'

const passphrase = 'unit-test-passphrase-0001'

describe('keys', { timeout: 30_000 }, () => {
  it('round-trips an encrypted PKCS#8 key with the right passphrase', async () => {
    const key = await generateKey('ec-p384')
    const pem = encryptPrivateKey(key, passphrase)
    assert.match(pem, /^-----BEGIN ENCRYPTED PRIVATE KEY-----\n/)
    const back = decryptPrivateKey(pem, passphrase, 'k')
    assert.equal(keyAlgorithmOf(back), 'ec-p384')
    assert.deepEqual(spkiOf(back), spkiOf(key))
  })

  it('gives ca_passphrase_invalid for wrong passphrases, every time', async () => {
    const pem = encryptPrivateKey(await generateKey('ec-p256'), passphrase)
    // Many attempts: with CBC some wrong keys yield valid padding and fail later as DER errors.
    for (let i = 0; i < 300; i++) assert.throws(() => decryptPrivateKey(pem, `wrong-passphrase-${i}-padding`, 'k'), { code: 'ca_passphrase_invalid' })
  })

  it('refuses plaintext keys, non-keys and short passphrases', async () => {
    const key = await generateKey('ec-p256')
    assert.throws(() => decryptPrivateKey(plainPrivateKey(key), passphrase, 'k'), { code: 'ca_key_not_encrypted' })
    assert.throws(() => decryptPrivateKey('garbage', passphrase, 'k'), { code: 'ca_corrupt' })
    assert.throws(() => encryptPrivateKey(key, 'short'), { code: 'ca_passphrase_too_short' })
  })

  it('makes serials of exactly 16 octets with the top bit clear', () => {
    for (let i = 0; i < 200; i++) assert.match(randomSerial(), /^[4-7][0-9a-f]{31}$/)
  })
})
