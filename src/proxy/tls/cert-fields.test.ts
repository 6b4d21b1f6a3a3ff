import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { describe, it } from 'node:test'
import { TestPki, pem } from '../../../test/harness/pki.js'
import { Eku, KeyUsage, formatIpv6, readCertFields } from './cert-fields.js'
import { DerError } from './der.js'

/** What `openssl x509` says about a certificate: the independent judge. */
function opensslView(path: string) {
  const text = execFileSync(
    'openssl',
    ['x509', '-in', path, '-noout', '-serial', '-startdate', '-enddate', '-subject', '-issuer', '-nameopt', 'RFC2253', '-ext', 'subjectAltName,keyUsage,extendedKeyUsage,basicConstraints'],
    { encoding: 'utf8' },
  )
  const line = (prefix: string) => text.split('\n').find((l) => l.startsWith(prefix))?.slice(prefix.length)
  const after = (heading: string) => {
    const lines = text.split('\n')
    const i = lines.findIndex((l) => l.startsWith(heading))
    return i < 0 ? undefined : lines[i + 1]!.trim()
  }
  return {
    serial: line('serial=')!,
    notBefore: Date.parse(line('notBefore=')!),
    notAfter: Date.parse(line('notAfter=')!),
    subject: line('subject=')!,
    issuer: line('issuer=')!,
    san: after('X509v3 Subject Alternative Name')?.split(', ') ?? [],
    keyUsage: after('X509v3 Key Usage')?.split(', ') ?? [],
    eku: after('X509v3 Extended Key Usage')?.split(', ') ?? [],
    isCa: after('X509v3 Basic Constraints')?.includes('CA:TRUE') ?? false,
  }
}

/** OpenSSL prints IPv6 SANs uncompressed ("2001:DB8:0:0:0:0:0:1"); expand ours to compare. */
function expandIpv6(text: string): string {
  const [head, tail] = text.split('::') as [string, string | undefined]
  const h = head ? head.split(':') : []
  const t = tail ? tail.split(':') : []
  const groups = tail === undefined ? h : [...h, ...Array(8 - h.length - t.length).fill('0'), ...t]
  return groups.map((g) => g.replace(/^0+(?=.)/, '').toUpperCase()).join(':')
}

const der = (path: string) => new X509Certificate(pem(path)).raw

describe('readCertFields', { timeout: 20_000 }, () => {
  const pki = new TestPki()
  const root = pki.root('fields-root')
  const inter = pki.intermediate('fields-int', root)

  it('reads serial, validity, names, SANs and usages as openssl x509 prints them', () => {
    const leaf = pki.client('fields-leaf', inter, {
      subject: '/CN=orders, eu\\+west/O=Acme "Ops"/OU=pay/OU=core/C=DE',
      extraExtensions: 'subjectAltName=@alt\n[alt]\nDNS.1=orders.example\nDNS.2=*.orders.example\nURI.1=spiffe://acme.test/ns/pay/sa/orders\nemail.1=ops@acme.test\nIP.1=10.1.2.3\nIP.2=2001:db8::7\n',
      keyUsage: 'critical,digitalSignature,keyAgreement',
      eku: 'clientAuth,serverAuth',
    })
    const f = readCertFields(der(leaf.cert))
    const o = opensslView(leaf.cert)
    assert.equal(f.serialNumber, o.serial.toLowerCase())
    assert.equal(f.notBefore, o.notBefore)
    assert.equal(f.notAfter, o.notAfter)
    assert.equal(f.subject.text, o.subject)
    assert.equal(f.issuer.text, o.issuer)
    assert.deepEqual(f.subject.fields.OU, ['pay', 'core'])
    assert.deepEqual(f.subject.fields.CN, ['orders, eu+west'])
    assert.deepEqual(f.subject.fields.O, ['Acme "Ops"'])
    assert.deepEqual(
      [...f.san.dns.map((d) => `DNS:${d}`), ...f.san.uri.map((u) => `URI:${u}`), ...f.san.email.map((e) => `email:${e}`), ...f.san.ip.map((i) => `IP Address:${i.includes(':') ? expandIpv6(i) : i}`)],
      o.san,
    )
    assert.deepEqual(f.san.ip, ['10.1.2.3', '2001:db8::7'])
    assert.deepEqual(o.keyUsage, ['Digital Signature', 'Key Agreement'])
    assert.deepEqual([...f.keyUsage!].sort(), [KeyUsage.digitalSignature, KeyUsage.keyAgreement])
    assert.deepEqual(o.eku, ['TLS Web Client Authentication', 'TLS Web Server Authentication'])
    assert.deepEqual(f.extKeyUsage, [Eku.clientAuth, Eku.serverAuth])
    assert.equal(f.isCa, false)
  })

  it('reads basicConstraints cA of CA certificates', () => {
    assert.equal(readCertFields(der(root.cert)).isCa, true)
    assert.equal(readCertFields(der(inter.cert)).isCa, opensslView(inter.cert).isCa)
  })

  it('matches openssl on serial numbers whatever their leading byte', () => {
    // rand_serial gives 20 random bytes: over a few certificates both a high first byte (DER sign padding) and a low one turn up.
    for (let i = 0; i < 4; i++) {
      const c = pki.client(`serial-${i}`, root)
      assert.equal(readCertFields(der(c.cert)).serialNumber, opensslView(c.cert).serial.toLowerCase())
    }
  })

  it('reports absent keyUsage and extendedKeyUsage as undefined', () => {
    const c = pki.client('no-eku', root, { eku: '', keyUsage: 'digitalSignature' })
    const f = readCertFields(der(c.cert))
    assert.equal(f.extKeyUsage, undefined)
    assert.deepEqual([...f.keyUsage!], [KeyUsage.digitalSignature])
  })

  it('refuses a DNS SAN holding a space', () => {
    const c = pki.client('space-san', root, { san: 'DNS:a b.example' })
    assert.throws(() => readCertFields(der(c.cert)), DerError)
  })

  it('refuses bytes after the certificate', () => {
    assert.throws(() => readCertFields(Buffer.concat([der(root.cert), Buffer.from([0])])), DerError)
  })
})

describe('formatIpv6', { timeout: 5_000 }, () => {
  const v6 = (groups: number[]) => {
    const b = Buffer.alloc(16)
    groups.forEach((g, i) => b.writeUInt16BE(g, i * 2))
    return formatIpv6(b)
  }
  it('follows RFC 5952 section 4 (longest run, first on a tie, no single-group compression)', () => {
    assert.equal(v6([0x2001, 0xdb8, 0, 0, 1, 0, 0, 1]), '2001:db8::1:0:0:1')
    assert.equal(v6([0x2001, 0xdb8, 0, 0, 0, 0, 2, 1]), '2001:db8::2:1')
    assert.equal(v6([0x2001, 0xdb8, 0, 1, 1, 1, 1, 1]), '2001:db8:0:1:1:1:1:1')
    assert.equal(v6([0x2001, 0, 0, 1, 0, 0, 0, 1]), '2001:0:0:1::1')
    assert.equal(v6([0, 0, 0, 0, 0, 0, 0, 1]), '::1')
    assert.equal(v6([0, 0, 0, 0, 0, 0, 0, 0]), '::')
    assert.equal(v6([1, 0, 0, 0, 0, 0, 0, 0]), '1::')
    assert.equal(v6([0xabcd, 0, 0, 0, 0, 0, 0, 0xef]), 'abcd::ef')
  })
})
