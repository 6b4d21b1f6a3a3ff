import assert from 'node:assert/strict'
import { execFileSync, spawnSync } from 'node:child_process'
import { createPrivateKey, generateKeyPairSync, webcrypto } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, test } from 'node:test'
import { TestPki, pem } from '../../test/harness/pki.js'
import { buildCrl, type RevokedEntry } from './crl.js'

const pki = new TestPki()
const ca = pki.root('crl-ca')
const caKey = createPrivateKey(pem(ca.key))
const T0 = Date.UTC(2030, 0, 15, 12, 0, 0, 500)
const DAY = 86_400_000

function openssl(args: string[]): { code: number; out: string } {
  const r = spawnSync('openssl', args, { cwd: pki.dir, encoding: 'utf8' })
  return { code: r.status ?? -1, out: `${r.stdout}${r.stderr}` }
}

function write(name: string, data: string | Buffer): string {
  const path = join(pki.dir, name)
  writeFileSync(path, data)
  return path
}

const revoked: RevokedEntry[] = [
  { serial: 'FF:01', revokedAt: T0 - 3600_000, reason: 'keyCompromise' },
  { serial: '0a', revokedAt: T0 - 7200_000, reason: 'unspecified' },
  { serial: '0x1234', revokedAt: T0 - 60_000, reason: 'privilegeWithdrawn' },
]

describe('buildCrl', { timeout: 30_000 }, () => {
  test('openssl reads entries in serial order, reasons, CRL number and update times', async () => {
    const crl = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked, crlNumber: 42n, thisUpdate: T0, nextUpdate: T0 + 7 * DAY })
    const file = write('ordered.crl.pem', crl.pem)
    const { code, out } = openssl(['crl', '-in', file, '-noout', '-text'])
    assert.equal(code, 0, out)
    assert.match(out, /Version 2/)
    assert.match(out, /Issuer: CN = crl-ca, O = Portcullis Test/)
    assert.match(out, /Last Update: Jan 15 12:00:00 2030 GMT/)
    assert.match(out, /Next Update: Jan 22 12:00:00 2030 GMT/)
    assert.match(out, /X509v3 CRL Number: \n\s+42\n/)
    const serials = [...out.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => m[1])
    assert.deepEqual(serials, ['0A', '1234', 'FF01'])
    // 0A is unspecified: no reason extension; the other two carry theirs.
    const blocks = out.split('Serial Number: ').slice(1)
    assert.doesNotMatch(blocks[0]!, /CRL Reason Code/)
    assert.match(blocks[1]!, /Privilege Withdrawn/)
    assert.match(blocks[2]!, /Key Compromise/)
    assert.match(blocks[2]!, /Revocation Date: Jan 15 11:00:00 2030 GMT/)
    // DER and PEM are the same CRL.
    const der = execFileSync('openssl', ['crl', '-in', file, '-outform', 'DER'])
    assert.deepEqual(der, crl.der)
  })

  test('the authority key identifier equals the issuer subject key identifier', async () => {
    const crl = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked: [], crlNumber: 1n, thisUpdate: T0, nextUpdate: T0 + DAY })
    const crlText = openssl(['crl', '-in', write('aki.crl.pem', crl.pem), '-noout', '-text']).out
    const caText = openssl(['x509', '-in', ca.cert, '-noout', '-text']).out
    const ski = /Subject Key Identifier: \n\s+([0-9A-F:]+)/.exec(caText)?.[1]
    assert.ok(ski)
    assert.match(crlText, new RegExp(`Authority Key Identifier: \\n\\s+(keyid:)?${ski}`))
    assert.match(crlText, /No Revoked Certificates/)
  })

  test('a CRL number beyond 2^53 is encoded exactly', async () => {
    const n = 2n ** 100n + 7n
    const crl = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked: [], crlNumber: n, thisUpdate: T0, nextUpdate: T0 + DAY })
    const out = openssl(['crl', '-in', write('big.crl.pem', crl.pem), '-noout', '-crlnumber']).out
    assert.equal(out.trim(), `crlNumber=0x${n.toString(16).toUpperCase()}`)
  })

  test('openssl verifies the signature of an ECDSA issuer CRL (KeyObject and CryptoKey inputs)', async () => {
    const fromKeyObject = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked, crlNumber: 1n, thisUpdate: T0, nextUpdate: T0 + DAY })
    const cryptoKey = await webcrypto.subtle.importKey('pkcs8', caKey.export({ type: 'pkcs8', format: 'der' }), { name: 'ECDSA', namedCurve: 'P-256' }, false, ['sign'])
    const fromCryptoKey = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: cryptoKey as CryptoKey, revoked, crlNumber: 2n, thisUpdate: T0, nextUpdate: T0 + DAY })
    for (const [i, crl] of [fromKeyObject, fromCryptoKey].entries()) {
      const { code, out } = openssl(['crl', '-in', write(`sig-${i}.crl.pem`, crl.pem), '-CAfile', ca.cert, '-noout', '-verify'])
      assert.equal(code, 0, out)
      assert.match(out, /verify OK/)
    }
  })

  test('openssl verifies the signature of an RSA issuer CRL', async () => {
    const key = join(pki.dir, 'rsa-ca.key')
    const cert = join(pki.dir, 'rsa-ca.crt')
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:3072', '-nodes', '-keyout', key, '-subj', '/CN=rsa-ca', '-days', '30',
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-out', cert], { stdio: 'ignore' })
    const crl = await buildCrl({ issuerCertPem: pem(cert), issuerKey: createPrivateKey(pem(key)), revoked, crlNumber: 3n, thisUpdate: T0, nextUpdate: T0 + DAY })
    const { code, out } = openssl(['crl', '-in', write('rsa.crl.pem', crl.pem), '-CAfile', cert, '-noout', '-verify', '-text'])
    assert.equal(code, 0, out)
    assert.match(out, /verify OK/)
    assert.match(out, /Signature Algorithm: sha256WithRSAEncryption/)
  })

  test('the issuer name is byte-identical to the certificate subject, as in an openssl ca CRL', async () => {
    // openssl's own CRL for the same CA is the reference encoding.
    const conf = write('gencrl.cnf', `[ca]\ndefault_ca=c\n[c]\ndatabase=${join(pki.dir, 'crl-ca.db', 'index.txt')}\ndefault_md=sha256\ndefault_crl_days=1\n`)
    execFileSync('openssl', ['ca', '-gencrl', '-config', conf, '-cert', ca.cert, '-keyfile', ca.key, '-out', join(pki.dir, 'ref.crl.pem')], { stdio: 'ignore' })
    const ours = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked: [], crlNumber: 1n, thisUpdate: T0, nextUpdate: T0 + DAY })
    const issuerOf = (file: string): string => openssl(['crl', '-in', file, '-noout', '-issuer', '-nameopt', 'RFC2253,dump_all,dump_der']).out
    assert.equal(issuerOf(write('ours.crl.pem', ours.pem)), issuerOf(join(pki.dir, 'ref.crl.pem')))
    assert.equal(openssl(['crl', '-in', join(pki.dir, 'ours.crl.pem'), '-noout', '-hash']).out, openssl(['x509', '-in', ca.cert, '-noout', '-subject_hash']).out)
  })

  test('rejects a duplicate serial, an invalid serial, an unknown reason and a bad window', async () => {
    const base = { issuerCertPem: pem(ca.cert), issuerKey: caKey, crlNumber: 1n, thisUpdate: T0, nextUpdate: T0 + DAY }
    await assert.rejects(buildCrl({ ...base, revoked: [{ serial: '0a', revokedAt: T0, reason: 'superseded' }, { serial: '000A', revokedAt: T0, reason: 'superseded' }] }), /duplicate serial/)
    await assert.rejects(buildCrl({ ...base, revoked: [{ serial: 'xyz', revokedAt: T0, reason: 'superseded' }] }), /invalid serial/)
    await assert.rejects(buildCrl({ ...base, revoked: [{ serial: '00', revokedAt: T0, reason: 'superseded' }] }), /invalid serial/)
    await assert.rejects(buildCrl({ ...base, revoked: [{ serial: '01', revokedAt: T0, reason: 'removeFromCRL' as 'superseded' }] }), /invalid revocation reason/)
    await assert.rejects(buildCrl({ ...base, revoked: [], nextUpdate: T0 }), /nextUpdate/)
    await assert.rejects(buildCrl({ ...base, revoked: [], crlNumber: -1n }), /crlNumber/)
    await assert.rejects(buildCrl({ ...base, revoked: [], crlNumber: 2n ** 159n }), /crlNumber/)
  })

  test('rejects a key that does not belong to the issuer certificate', async () => {
    const other = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
    await assert.rejects(
      buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: other, revoked: [], crlNumber: 1n, thisUpdate: T0, nextUpdate: T0 + DAY }),
      /does not match/,
    )
  })

  test('rejects an issuer whose key usage does not allow CRL signing', async () => {
    const notCa = pki.server('crl-not-ca', ca)
    await assert.rejects(
      buildCrl({ issuerCertPem: pem(notCa.cert), issuerKey: createPrivateKey(readFileSync(notCa.key)), revoked: [], crlNumber: 1n, thisUpdate: T0, nextUpdate: T0 + DAY }),
      /cRLSign/,
    )
  })
})
