/**
 * The certs-only PKCS#7 judged by openssl (`openssl pkcs7 -print_certs`,
 * `openssl asn1parse`) and read back by @peculiar/x509, so the builder never
 * grades itself.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { describe, it } from 'node:test'
import * as x509 from '@peculiar/x509'
import { newCa } from '../../../test/integration/pki-helpers.js'
import { base64Lines, certsOnlyPkcs7 } from './pkcs7.js'

function openssl(args: readonly string[], input: Buffer | string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { input, encoding: 'utf8', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

describe('certsOnlyPkcs7', () => {
  it('holds the given certificates in order, with no signer and no content, as openssl reads it', async () => {
    const { ca } = await newCa()
    const der = certsOnlyPkcs7([new Uint8Array(ca.intermediate.rawData), new Uint8Array(ca.root.rawData)])
    const printed = openssl(['pkcs7', '-inform', 'DER', '-print_certs', '-noout'], der)
    assert.equal(printed.status, 0, printed.stderr)
    const subjects = [...printed.stdout.matchAll(/^subject=(.*)$/gm)].map((m) => m[1])
    assert.deepEqual(subjects, ['CN = Portcullis Test Issuing, O = Portcullis Test', 'CN = Portcullis Test Root, O = Portcullis Test'])

    // RFC 5272 §4.1: eContentType id-data and no eContent; no signerInfos.
    const parsed = openssl(['asn1parse', '-inform', 'DER'], der)
    assert.equal(parsed.status, 0, parsed.stderr)
    assert.match(parsed.stdout, /:pkcs7-signedData/)
    // encapContentInfo is a SEQUENCE of 11 bytes: the id-data OID alone, no [0] eContent.
    assert.match(parsed.stdout, /l= {2}11 cons: SEQUENCE\s*\n.*OBJECT\s+:pkcs7-data\n/)
    assert.match(parsed.stdout.trimEnd(), /SET\s*$/, 'an empty signerInfos SET closes the structure')

    const back = new x509.X509Certificates(new Uint8Array(der))
    assert.equal(back.length, 2)
    assert.equal(back[0]!.subject, ca.intermediate.subject)
  })

  it('base64Lines writes 64-character lines that openssl base64 -d decodes to the same bytes', () => {
    const bytes = Buffer.from(Array.from({ length: 300 }, (_, i) => i % 256))
    const text = base64Lines(bytes)
    assert.ok(text.split('\n').slice(0, -1).every((line) => line.length <= 64))
    const r = spawnSync('openssl', ['base64', '-d'], { input: text, timeout: 20_000 })
    assert.equal(r.status, 0)
    assert.deepEqual(Buffer.from(r.stdout), bytes)
  })
})
