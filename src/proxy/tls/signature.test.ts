import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { mkdtempSync, readFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { readCertFields } from './cert-fields.js'
import { checkSignature, isAcceptedAlgorithm } from './signature.js'

const dir = mkdtempSync(join(tmpdir(), 'portcullis-sig-'))

/** A self-signed certificate made by `openssl req -x509` with the given key and signing options. */
function selfSigned(name: string, keyArgs: string[], signArgs: string[]) {
  const key = join(dir, `${name}.key`)
  const cert = join(dir, `${name}.crt`)
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key], { stdio: 'ignore' })
  execFileSync('openssl', ['req', '-x509', '-new', '-key', key, '-subj', `/CN=${name}`, '-days', '2', ...signArgs, '-out', cert], { stdio: 'ignore' })
  const x = new X509Certificate(readFileSync(cert))
  return { fields: readCertFields(x.raw), key: x.publicKey }
}

describe('checkSignature', { timeout: 20_000 }, () => {
  const cases = [
    ['ecdsa-p256-sha256', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], ['-sha256']],
    ['ecdsa-p384-sha384', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-384'], ['-sha384']],
    ['rsa-sha256', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha256']],
    ['rsa-pss-sha256', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha256', '-sigopt', 'rsa_padding_mode:pss', '-sigopt', 'rsa_pss_saltlen:32']],
    ['ed25519', ['-algorithm', 'ED25519'], []],
  ] as const

  for (const [name, keyArgs, signArgs] of cases) {
    it(`verifies an openssl-made ${name} signature and refuses it over altered bytes`, () => {
      const { fields, key } = selfSigned(name, [...keyArgs], [...signArgs])
      assert.equal(isAcceptedAlgorithm(fields.signatureAlgorithm), true)
      assert.equal(checkSignature(fields, key), 'valid')
      const tbs = Buffer.from(fields.tbs)
      tbs.writeUInt8(tbs.readUInt8(tbs.length - 5) ^ 1, tbs.length - 5)
      assert.equal(checkSignature({ ...fields, tbs }, key), 'invalid')
    })
  }

  it('refuses a signature by another key', () => {
    const a = selfSigned('other-a', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], [])
    const b = selfSigned('other-b', ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256'], [])
    assert.equal(checkSignature(a.fields, b.key), 'invalid')
  })

  it('does not accept SHA-1 signatures', () => {
    const { fields, key } = selfSigned('rsa-sha1', ['-algorithm', 'RSA', '-pkeyopt', 'rsa_keygen_bits:2048'], ['-sha1'])
    assert.equal(isAcceptedAlgorithm(fields.signatureAlgorithm), false)
    assert.equal(checkSignature(fields, key), 'unsupported')
  })
})
