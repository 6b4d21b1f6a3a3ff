import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { createPrivateKey, X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { AsnConvert, OctetString } from '@peculiar/asn1-schema'
import { BasicOCSPResponse, CertStatus, OCSPResponse, RevokedInfo } from '@peculiar/asn1-ocsp'
import { TestPki, pem, type CertFiles } from '../../test/harness/pki.js'
import { systemClock } from '../shared/clock.js'
import { createOcspHttpHandler } from './ocsp-http.js'
import { MAX_RESPONSE_BYTES, OcspError, ocspUrlOf, queryOcsp, verifyOcspResponse, type OcspErrorCode, type OcspQuery } from './ocsp-client.js'
import { createOcspResponder, type CertStatusResult } from './ocsp-responder.js'

const pki = new TestPki()
const ca = pki.root('cli-ca')
const otherCa = pki.root('cli-other-ca')
const NOCHECK = '1.3.6.1.5.5.7.48.1.5=ASN1:NULL\n'
const signer = pki.leaf('cli-signer', ca, { subject: '/CN=cli-ocsp', eku: 'OCSPSigning', extraExtensions: NOCHECK })
const notASigner = pki.leaf('cli-not-signer', ca, { subject: '/CN=cli-not-ocsp', eku: 'clientAuth' })
const alienSigner = pki.leaf('cli-alien-signer', otherCa, { subject: '/CN=cli-alien-ocsp', eku: 'OCSPSigning' })
const good = pki.client('cli-good', ca)
const revoked = pki.client('cli-revoked', ca)
const unknown = pki.client('cli-unknown', ca)
const withAia = pki.server('cli-aia', ca, { extraExtensions: 'authorityInfoAccess=caIssuers;URI:http://pki.test/ca.crt,OCSP;URI:ldap://pki.test/x,OCSP;URI:http://pki.test/ocsp\n' })
const onlyIssuers = pki.server('cli-issuers', ca, { extraExtensions: 'authorityInfoAccess=caIssuers;URI:http://pki.test/ca.crt\n' })

const der = (path: string): Buffer => Buffer.from(new X509Certificate(readFileSync(path)).raw)
const serialOf = (c: CertFiles): string => new X509Certificate(readFileSync(c.cert)).serialNumber.toLowerCase()
const REVOKED_AT = Math.floor(Date.now() / 1000) * 1000 - 3_600_000

function query(cert: CertFiles, url: string, over: Partial<OcspQuery> = {}): OcspQuery {
  return { certDer: der(cert.cert), issuerDer: der(ca.cert), url, timeoutMs: 2000, now: () => Date.now(), ...over }
}

async function rejectsWith(p: Promise<unknown> | (() => unknown), code: OcspErrorCode): Promise<OcspError> {
  let caught: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (err) {
    caught = err
  }
  assert.ok(caught instanceof OcspError, `expected OcspError ${code}, got ${String(caught)}`)
  assert.equal(caught.code, code, caught.message)
  return caught
}

function listen(server: Server): Promise<string> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}`)))
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
}

/** The project's own responder over HTTP. */
const inventory = new Map<string, CertStatusResult>()
let ours: Server
let oursUrl: string

/** `openssl ocsp` as a responder: the independent implementation. */
interface OpensslResponder {
  readonly url: string
  readonly child: ChildProcess
}
const opensslResponders: OpensslResponder[] = []

/** An index.txt for openssl: good valid, revoked revoked (keyCompromise), unknown absent. */
function writeIndex(): string {
  const lines = readFileSync(join(pki.dir, `${ca.name}.db`, 'index.txt'), 'utf8').split('\n').filter(Boolean)
  const revokedSerial = serialOf(revoked).toUpperCase()
  const unknownSerial = serialOf(unknown).toUpperCase()
  const asnTime = (ms: number): string => new Date(ms).toISOString().replace(/[-:T]/g, '').slice(2, 14) + 'Z'
  const out = lines
    .filter((l) => l.split('\t')[3]?.toUpperCase() !== unknownSerial)
    .map((l) => {
      const f = l.split('\t')
      return f[3]?.toUpperCase() === revokedSerial ? ['R', f[1], `${asnTime(REVOKED_AT)},keyCompromise`, ...f.slice(3)].join('\t') : l
    })
  const file = join(pki.dir, 'openssl-index.txt')
  writeFileSync(file, `${out.join('\n')}\n`)
  return file
}

async function startOpensslResponder(sign: { cert: string; key: string }): Promise<string> {
  const index = join(pki.dir, 'openssl-index.txt')
  const child = spawn('openssl', ['ocsp', '-index', index, '-port', '0', '-rsigner', sign.cert, '-rkey', sign.key, '-CA', ca.cert, '-nmin', '10'], { stdio: ['ignore', 'pipe', 'pipe'] })
  const url = await new Promise<string>((resolve, reject) => {
    let text = ''
    const timer = setTimeout(() => reject(new Error(`openssl ocsp did not start: ${text}`)), 10_000)
    const onData = (chunk: Buffer): void => {
      text += chunk.toString()
      const port = /ACCEPT \S*:(\d+)/.exec(text)?.[1]
      if (port) {
        clearTimeout(timer)
        resolve(`http://127.0.0.1:${port}/`)
      }
    }
    child.stdout.on('data', onData)
    child.stderr.on('data', onData)
    child.once('exit', (code) => reject(new Error(`openssl ocsp exited ${code}: ${text}`)))
  })
  opensslResponders.push({ url, child })
  return url
}

before(async () => {
  inventory.set(serialOf(good).replace(/^(00)+/, ''), { status: 'good' })
  inventory.set(serialOf(revoked).replace(/^(00)+/, ''), { status: 'revoked', revokedAt: REVOKED_AT, reason: 'keyCompromise' })
  const responder = createOcspResponder({
    issuerCertPem: pem(ca.cert),
    signerCertPem: pem(signer.cert),
    signerKey: createPrivateKey(pem(signer.key)),
    status: (serial) => inventory.get(serial) ?? { status: 'unknown' },
    clock: systemClock,
    validityMs: 3_600_000,
  })
  ours = createServer(createOcspHttpHandler(responder, { pathPrefix: '/ocsp/' }))
  oursUrl = `${await listen(ours)}/ocsp/`
  writeIndex()
})

after(async () => {
  await close(ours)
  for (const r of opensslResponders) r.child.kill()
})

describe('ocspUrlOf', () => {
  test('returns the first http(s) OCSP URL of the AIA, skipping caIssuers and ldap', () => {
    assert.equal(ocspUrlOf(der(withAia.cert)), 'http://pki.test/ocsp')
  })
  test('is undefined without an OCSP access method, without AIA, or for garbage', () => {
    assert.equal(ocspUrlOf(der(onlyIssuers.cert)), undefined)
    assert.equal(ocspUrlOf(der(good.cert)), undefined)
    assert.equal(ocspUrlOf(Buffer.from('not a certificate')), undefined)
  })
})

describe('queryOcsp against the project responder', { timeout: 60_000 }, () => {
  test('good, with thisUpdate and nextUpdate an hour apart', async () => {
    const a = await queryOcsp(query(good, oursUrl))
    assert.equal(a.status, 'good')
    assert.equal(a.nextUpdate! - a.thisUpdate, 3_600_000)
    assert.ok(Math.abs(a.thisUpdate - Date.now()) < 5000)
  })

  test('revoked, with time and RFC 5280 reason name', async () => {
    const a = await queryOcsp(query(revoked, oursUrl))
    assert.equal(a.status, 'revoked')
    assert.equal(a.revokedAt, REVOKED_AT)
    assert.equal(a.reason, 'keyCompromise')
  })

  test('unknown for a serial the inventory does not hold', async () => {
    assert.equal((await queryOcsp(query(unknown, oursUrl))).status, 'unknown')
  })

  test('sends a nonce and accepts it echoed', async () => {
    assert.equal((await queryOcsp(query(good, oursUrl, { nonce: true }))).status, 'good')
  })

  test('the stapled bytes are a response openssl verifies for the certificate', async () => {
    const a = await queryOcsp(query(good, oursUrl))
    const file = join(pki.dir, 'cli-staple.der')
    writeFileSync(file, a.responseDer)
    const { spawnSync } = await import('node:child_process')
    const r = spawnSync('openssl', ['ocsp', '-respin', file, '-issuer', ca.cert, '-cert', good.cert, '-CAfile', ca.cert], { encoding: 'utf8' })
    assert.match(r.stderr, /Response verify OK/)
    assert.match(r.stdout, /cli-good\.crt: good/)
  })

  test('a response about another issuer is unsuccessful (the responder says unauthorized)', async () => {
    const foreign = pki.client('cli-foreign', otherCa)
    const e = await rejectsWith(queryOcsp({ ...query(foreign, oursUrl), issuerDer: der(otherCa.cert) }), 'unsuccessful')
    assert.match(e.message, /unauthorized/)
  })
})

describe('queryOcsp against openssl ocsp (independent responder)', { timeout: 60_000 }, () => {
  test('good, revoked (with reason) and unknown from a delegated signer', async () => {
    const url = await startOpensslResponder(signer)
    assert.equal((await queryOcsp(query(good, url))).status, 'good')
    const r = await queryOcsp(query(revoked, url))
    assert.equal(r.status, 'revoked')
    assert.equal(r.reason, 'keyCompromise')
    assert.equal(r.revokedAt, REVOKED_AT)
    assert.equal((await queryOcsp(query(unknown, url))).status, 'unknown')
    assert.equal((await queryOcsp(query(good, url, { nonce: true }))).status, 'good')
  })

  test('accepts a response signed by the issuer itself', async () => {
    const url = await startOpensslResponder(ca)
    assert.equal((await queryOcsp(query(good, url, { nonce: true }))).status, 'good')
  })

  test('refuses a signer without id-kp-OCSPSigning', async () => {
    const url = await startOpensslResponder(notASigner)
    const e = await rejectsWith(queryOcsp(query(good, url)), 'unauthorized_signer')
    assert.match(e.message, /OCSPSigning/)
  })

  test('refuses an OCSP signer issued by another CA', async () => {
    const url = await startOpensslResponder(alienSigner)
    const e = await rejectsWith(queryOcsp(query(good, url)), 'unauthorized_signer')
    assert.match(e.message, /not issued/)
  })
})

describe('verifyOcspResponse', { timeout: 60_000 }, () => {
  let goodDer: Uint8Array
  let nonceDer: Uint8Array
  before(async () => {
    goodDer = (await queryOcsp(query(good, oursUrl))).responseDer
    nonceDer = await rawResponse(good, true)
  })

  /** A response from our responder to an openssl-made request, with or without a nonce we can read back. */
  async function rawResponse(cert: CertFiles, withNonce: boolean): Promise<Uint8Array> {
    const { execFileSync } = await import('node:child_process')
    const reqFile = join(pki.dir, `cli-req-${withNonce}.der`)
    execFileSync('openssl', ['ocsp', '-issuer', ca.cert, '-cert', cert.cert, withNonce ? '-nonce' : '-no_nonce', '-reqout', reqFile], { stdio: 'ignore' })
    const res = await fetch(oursUrl, { method: 'POST', headers: { 'content-type': 'application/ocsp-request' }, body: readFileSync(reqFile) })
    return new Uint8Array(await res.arrayBuffer())
  }

  const base = (over: Partial<Parameters<typeof verifyOcspResponse>[1]> = {}) => ({ certDer: der(good.cert), issuerDer: der(ca.cert), now: () => Date.now(), ...over })

  /** Re-encodes goodDer after `edit` changed its BasicOCSPResponse, keeping the original signature. */
  function tampered(edit: (basic: BasicOCSPResponse) => void): Uint8Array {
    const response = AsnConvert.parse(goodDer, OCSPResponse)
    const basic = AsnConvert.parse(response.responseBytes!.response.buffer, BasicOCSPResponse)
    edit(basic)
    response.responseBytes!.response = new OctetString(AsnConvert.serialize(basic))
    return new Uint8Array(AsnConvert.serialize(response))
  }

  test('re-encoding without a change still verifies (the tampering below is the only difference)', () => {
    assert.equal(verifyOcspResponse(tampered(() => undefined), base()).status, 'good')
  })

  test('a flipped signature bit is bad_signature', async () => {
    const bad = tampered((basic) => {
      const signature = new Uint8Array(basic.signature)
      signature[signature.length - 1] = signature[signature.length - 1]! ^ 0x01
      basic.signature = signature.buffer
    })
    await rejectsWith(() => verifyOcspResponse(bad, base()), 'bad_signature')
  })

  test('good turned into revoked breaks the signature', async () => {
    const bad = tampered((basic) => {
      basic.tbsResponseData.responses[0]!.certStatus = new CertStatus({ revoked: new RevokedInfo({ revocationTime: new Date(REVOKED_AT) }) })
    })
    await rejectsWith(() => verifyOcspResponse(bad, base()), 'bad_signature')
  })

  test('the wrong issuer: the delegated signer is not its certificate', async () => {
    await rejectsWith(() => verifyOcspResponse(goodDer, base({ issuerDer: der(otherCa.cert) })), 'unauthorized_signer')
  })

  test('a response about another certificate is wrong_certificate', async () => {
    await rejectsWith(() => verifyOcspResponse(goodDer, base({ certDer: der(revoked.cert) })), 'wrong_certificate')
  })

  test('after nextUpdate (beyond the skew) it is stale; thisUpdate far in the future too', async () => {
    verifyOcspResponse(goodDer, base({ now: () => Date.now() + 3_600_000 + 60_000 })) // within 5 min skew
    await rejectsWith(() => verifyOcspResponse(goodDer, base({ now: () => Date.now() + 3_600_000 + 6 * 60_000 })), 'stale')
    await rejectsWith(() => verifyOcspResponse(goodDer, base({ now: () => Date.now() - 6 * 60_000 })), 'stale')
  })

  test('an expired delegated signer is unauthorized', async () => {
    await rejectsWith(() => verifyOcspResponse(goodDer, base({ now: () => Date.now() + 40 * 86_400_000 })), 'unauthorized_signer')
  })

  test('a nonce is required back when one was sent, and must be the same', async () => {
    await rejectsWith(() => verifyOcspResponse(goodDer, base({ nonce: new Uint8Array(16).fill(1) })), 'nonce_mismatch')
    await rejectsWith(() => verifyOcspResponse(nonceDer, base({ nonce: new Uint8Array(16).fill(1) })), 'nonce_mismatch')
    // Without asking for a nonce, one in the response is harmless.
    assert.equal(verifyOcspResponse(nonceDer, base()).status, 'good')
  })

  test('garbage, truncation and trailing bytes are malformed', async () => {
    await rejectsWith(() => verifyOcspResponse(Buffer.from('hello'), base()), 'malformed')
    await rejectsWith(() => verifyOcspResponse(goodDer.subarray(0, goodDer.length - 1), base()), 'malformed')
    await rejectsWith(() => verifyOcspResponse(Buffer.concat([goodDer, Buffer.from([0])]), base()), 'malformed')
  })
})

describe('queryOcsp transport failures', { timeout: 30_000 }, () => {
  test('a closed port is unreachable, quickly', async () => {
    const s = createServer()
    const url = await listen(s)
    await close(s)
    const started = performance.now()
    await rejectsWith(queryOcsp(query(good, url)), 'unreachable')
    assert.ok(performance.now() - started < 1000)
  })

  test('a responder that never answers is unreachable within the timeout', async () => {
    const s = createServer(() => undefined)
    const url = await listen(s)
    const started = performance.now()
    const e = await rejectsWith(queryOcsp(query(good, url, { timeoutMs: 300 })), 'unreachable')
    const took = performance.now() - started
    assert.ok(took >= 250 && took < 1500, `took ${took} ms`)
    assert.match(e.message, /timed out|Timeout/i)
    await close(s)
  })

  test('a non-200 answer is http_status; an oversized body is malformed; a non-http URL is unreachable', async () => {
    const s = createServer((req, res) => {
      if (req.url === '/500') return res.writeHead(500).end()
      res.writeHead(200, { 'content-type': 'application/ocsp-response' })
      res.end(Buffer.alloc(MAX_RESPONSE_BYTES + 1, 0x30))
    })
    const url = await listen(s)
    await rejectsWith(queryOcsp(query(good, `${url}/500`)), 'http_status')
    await rejectsWith(queryOcsp(query(good, `${url}/big`)), 'malformed')
    await rejectsWith(queryOcsp(query(good, 'ldap://pki.test/ocsp')), 'unreachable')
    await close(s)
  })
})
