/**
 * CRL distribution points and OCSP URLs read from certificates made by
 * openssl, with the forms we skip (LDAP, partitioned by reason, indirect).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { describe, it } from 'node:test'
import { TestPki } from '../../../../test/harness/pki.js'
import { certSourcesOf, crlUrlsOf } from './cert-sources.js'

const pki = new TestPki()
const ca = pki.root('sources-ca')
const der = (file: string) => Buffer.from(execFileSync('openssl', ['x509', '-in', file, '-outform', 'DER']))

describe('certSourcesOf', () => {
  it('reads every http(s) distribution point in order and the OCSP responder', () => {
    const leaf = pki.client('sources-many', ca, {
      extraExtensions:
        'crlDistributionPoints=URI:http://crl.example/a.crl,URI:ldap://ldap.example/cn=ca,URI:https://crl.example/b.crl\n' +
        'authorityInfoAccess=caIssuers;URI:http://ca.example/ca.crt,OCSP;URI:http://ocsp.example/\n',
    })
    assert.deepEqual(certSourcesOf(der(leaf.cert)), { crlUrls: ['http://crl.example/a.crl', 'https://crl.example/b.crl'], ocspUrl: 'http://ocsp.example/' })
  })

  it('skips distribution points partitioned by reason or naming another CRL issuer', () => {
    const leaf = pki.client('sources-partial', ca, {
      extraExtensions:
        'crlDistributionPoints=dp_reasons,dp_issuer,dp_plain\n[dp_reasons]\nfullname=URI:http://crl.example/key.crl\nreasons=keyCompromise\n' +
        '[dp_issuer]\nfullname=URI:http://crl.example/other.crl\nCRLissuer=dirName:issuer_dn\n[issuer_dn]\nCN=Other CA\n[dp_plain]\nfullname=URI:http://crl.example/all.crl\n',
    })
    assert.deepEqual(crlUrlsOf(der(leaf.cert)), ['http://crl.example/all.crl'])
  })

  it('finds nothing in a certificate that names no source', () => {
    assert.deepEqual(certSourcesOf(der(pki.client('sources-none', ca).cert)), { crlUrls: [], ocspUrl: undefined })
    assert.deepEqual(crlUrlsOf(readFileSync(ca.cert)), [], 'PEM is not DER: no sources, no throw')
  })
})
