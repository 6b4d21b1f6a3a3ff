/**
 * The EST body decoding and the re-enrollment identity rule, with CSRs made
 * by `openssl req` (the independent side) and a certificate from our CA.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, it } from 'node:test'
import * as x509 from '@peculiar/x509'
import { signCsr } from '../../pki/ca-sign-csr.js'
import { newCa, tempDir } from '../../../test/integration/pki-helpers.js'
import { estBodyToPem, reenrollMismatch } from './est-csr.js'

let dir: string
let key: string

/** A CSR from openssl as DER, optionally with PrintableString attributes (string_mask nombstr). */
function opensslCsr(subject: string, san: string, isPrintable = false): Buffer {
  const args = ['req', '-new', '-key', key, '-subj', subject, '-addext', `subjectAltName=${san}`, '-outform', 'DER']
  if (isPrintable) {
    const conf = join(dir, 'printable.cnf')
    writeFileSync(conf, '[req]\ndistinguished_name=dn\nstring_mask=nombstr\n[dn]\n')
    args.push('-config', conf)
  }
  const r = spawnSync('openssl', args, { timeout: 20_000 })
  assert.equal(r.status, 0, r.stderr?.toString())
  return r.stdout
}

before(() => {
  dir = tempDir('portcullis-est-csr-')
  key = join(dir, 'device.key')
  assert.equal(spawnSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key]).status, 0)
})

describe('estBodyToPem', () => {
  it('accepts base64 DER with or without line breaks and returns a PEM x509 parses', () => {
    const der = opensslCsr('/CN=a.example', 'DNS:a.example')
    const wrapped = der.toString('base64').replace(/.{1,64}/g, '$&\r\n')
    for (const body of [der.toString('base64'), wrapped]) {
      const pem = estBodyToPem(Buffer.from(body))
      assert.ok(pem)
      assert.equal(new x509.Pkcs10CertificateRequest(pem).subject, 'CN=a.example')
    }
  })

  it('refuses PEM, raw DER, stray characters, non-canonical base64 and an empty body', () => {
    const der = opensslCsr('/CN=a.example', 'DNS:a.example')
    const b64 = der.toString('base64')
    const pem = `-----BEGIN CERTIFICATE REQUEST-----\n${b64}\n-----END CERTIFICATE REQUEST-----\n`
    // Flip a padding bit: decodes to the same bytes, but is not what an encoder writes.
    const last = b64.replace(/=+$/, '').slice(-1)
    const nonCanonical = b64.endsWith('=') ? b64.replace(/.(=+)$/, `${String.fromCharCode(last.charCodeAt(0) + 1)}$1`) : undefined
    for (const body of [Buffer.from(pem), der, Buffer.from(`${b64}!`), Buffer.from(''), Buffer.from('aGVsbG8=')]) {
      assert.equal(estBodyToPem(body), undefined, body.toString('latin1').slice(0, 20))
    }
    if (nonCanonical) assert.equal(estBodyToPem(Buffer.from(nonCanonical)), undefined)
  })
})

describe('reenrollMismatch', () => {
  let current: x509.X509Certificate

  before(async () => {
    const { ca, clock } = await newCa()
    const pem = estBodyToPem(Buffer.from(opensslCsr('/CN=dev1.globex.test', 'DNS:dev1.globex.test').toString('base64')))!
    const signed = await signCsr(ca, pem, { profile: 'partner', partnerPolicy: { name: 'globex', allowedDnsNames: ['*.globex.test'] }, clock })
    assert.ok(signed.ok)
    current = new x509.X509Certificate(signed.certPem)
  })

  const pemOf = (der: Buffer) => estBodyToPem(Buffer.from(der.toString('base64')))!

  it('accepts the same subject and SANs, whatever the string type and SAN case', () => {
    assert.equal(reenrollMismatch(pemOf(opensslCsr('/O=globex/CN=dev1.globex.test', 'DNS:DEV1.globex.test')), current), undefined)
    assert.equal(reenrollMismatch(pemOf(opensslCsr('/O=globex/CN=dev1.globex.test', 'DNS:dev1.globex.test', true)), current), undefined)
  })

  it('names a different subject, a missing O, reordered RDNs, and different SANs', () => {
    assert.match(reenrollMismatch(pemOf(opensslCsr('/CN=dev1.globex.test', 'DNS:dev1.globex.test')), current) ?? '', /^subject "CN=dev1.globex.test" differs/)
    assert.match(reenrollMismatch(pemOf(opensslCsr('/CN=dev1.globex.test/O=globex', 'DNS:dev1.globex.test')), current) ?? '', /^subject/)
    assert.match(reenrollMismatch(pemOf(opensslCsr('/O=globex/CN=dev1.globex.test', 'DNS:dev2.globex.test')), current) ?? '', /^subjectAltName \[dns:dev2.globex.test\] differs/)
    assert.match(reenrollMismatch(pemOf(opensslCsr('/O=globex/CN=dev1.globex.test', 'DNS:dev1.globex.test,DNS:x.globex.test')), current) ?? '', /^subjectAltName/)
  })
})
