/**
 * The OCSP responder over real HTTP on 127.0.0.1, judged by `openssl ocsp`
 * (POST, nonce verification, chain and -VAfile trust) and `curl` (the GET
 * form, HTTP limits and cache headers). Revocation is visible on the next
 * query without restarting anything.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createPrivateKey } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { createOcspHttpHandler } from '../../src/pki/ocsp-http.js'
import { createOcspResponder, type CertStatusResult } from '../../src/pki/ocsp-responder.js'
import { systemClock } from '../../src/shared/clock.js'
import { TestPki, pem, type CaFiles, type CertFiles } from '../harness/pki.js'

const exec = promisify(execFile)

const pki = new TestPki()
const ca = pki.root('ocsp-it-ca')
const otherCa = pki.root('ocsp-it-other')
const signer = pki.leaf('ocsp-it-signer', ca, {
  subject: '/CN=ocsp-it-signer',
  eku: 'OCSPSigning',
  extraExtensions: '1.3.6.1.5.5.7.48.1.5=ASN1:NULL\n',
})
const good = pki.client('ocsp-it-good', ca)
const revoked = pki.client('ocsp-it-revoked', ca)
const unknown = pki.client('ocsp-it-unknown', ca)
const later = pki.client('ocsp-it-later', ca)
const foreign = pki.client('ocsp-it-foreign', otherCa)

async function serialOf(c: CertFiles): Promise<string> {
  const { stdout } = await exec('openssl', ['x509', '-in', c.cert, '-noout', '-serial'])
  return stdout.trim().slice('serial='.length).toLowerCase()
}

const inventory = new Map<string, CertStatusResult>()
const revokedAt = Math.floor(Date.now() / 1000) * 1000 - 600_000

let server: Server
let url: string

before(async () => {
  inventory.set(await serialOf(good), { status: 'good' })
  inventory.set(await serialOf(later), { status: 'good' })
  inventory.set(await serialOf(revoked), { status: 'revoked', revokedAt, reason: 'superseded' })
  const responder = createOcspResponder({
    issuerCertPem: pem(ca.cert),
    signerCertPem: pem(signer.cert),
    signerKey: createPrivateKey(pem(signer.key)),
    status: async (serial) => inventory.get(serial) ?? { status: 'unknown' },
    clock: systemClock,
    validityMs: 3_600_000,
  })
  server = createServer(createOcspHttpHandler(responder, { pathPrefix: '/ocsp/', maxBodyBytes: 4096 }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ocsp/`
})

after(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

interface Result { code: number; stdout: string; stderr: string }

async function run(cmd: string, args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec(cmd, args, { timeout: 10_000, encoding: 'utf8' })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout, stderr: e.stderr }
  }
}

/** `openssl ocsp` against our server over POST; the nonce is on unless `-no_nonce` is passed. */
function ocsp(cert: CertFiles, extra: string[] = [], issuer: CaFiles = ca): Promise<Result> {
  return run('openssl', ['ocsp', '-issuer', issuer.cert, '-cert', cert.cert, '-url', url, '-CAfile', ca.cert, '-resp_text', ...extra])
}

let seq = 0

/** An openssl-made DER request, for the GET form and raw POSTs. */
async function makeRequest(cert: CertFiles, extra: string[] = ['-no_nonce']): Promise<Buffer> {
  const file = join(pki.dir, `it-${++seq}.req`)
  const r = await run('openssl', ['ocsp', '-issuer', ca.cert, '-cert', cert.cert, ...extra, '-reqout', file])
  assert.equal(r.code, 0, r.stderr)
  return readFileSync(file)
}

/** GET with curl; returns status, headers and the body saved to a file for openssl. */
async function curlGet(path: string): Promise<{ status: number; headers: string; bodyFile: string }> {
  const bodyFile = join(pki.dir, `it-${++seq}.resp`)
  const r = await run('curl', ['-sS', '-D', '-', '-o', bodyFile, '--max-time', '10', `${url}${path}`])
  assert.equal(r.code, 0, r.stderr)
  const status = Number(/^HTTP\/1\.1 (\d+)/.exec(r.stdout)?.[1])
  return { status, headers: r.stdout.toLowerCase(), bodyFile }
}

async function respText(bodyFile: string, extra: string[] = []): Promise<Result> {
  return run('openssl', ['ocsp', '-respin', bodyFile, '-CAfile', ca.cert, '-resp_text', ...extra])
}

describe('OCSP responder over HTTP', { timeout: 60_000 }, () => {
  test('openssl ocsp gets good with a verified nonce', async () => {
    const r = await ocsp(good, ['-nonce'])
    assert.match(r.stdout, /ocsp-it-good\.crt: good/)
    assert.match(r.stderr, /Response verify OK/)
    assert.match(r.stdout, /OCSP Nonce/)
    assert.doesNotMatch(`${r.stdout}${r.stderr}`, /Nonce Verify error|WARNING: no nonce/)
  })

  test('openssl ocsp gets revoked with reason and time', async () => {
    const r = await ocsp(revoked)
    assert.match(r.stdout, /ocsp-it-revoked\.crt: revoked/)
    assert.match(r.stdout, /Reason: superseded/)
    assert.match(r.stdout, new RegExp(`Revocation Time: ${new Date(revokedAt).toUTCString().slice(8, 11)}`))
    assert.match(r.stderr, /Response verify OK/)
  })

  test('openssl ocsp gets unknown for a serial the inventory does not hold', async () => {
    const r = await ocsp(unknown, ['-no_nonce'])
    assert.match(r.stdout, /ocsp-it-unknown\.crt: unknown/)
    assert.match(r.stderr, /Response verify OK/)
    assert.doesNotMatch(r.stdout, /OCSP Nonce/)
  })

  test('the response verifies with the signer trusted directly (-VAfile)', async () => {
    const r = await run('openssl', ['ocsp', '-issuer', ca.cert, '-cert', good.cert, '-url', url, '-VAfile', signer.cert])
    assert.match(r.stdout, /good/)
    assert.match(r.stderr, /Response verify OK/)
  })

  test('a request about another issuer is answered unauthorized', async () => {
    const r = await ocsp(foreign, ['-no_nonce'], otherCa)
    assert.match(`${r.stdout}${r.stderr}`, /Responder Error: unauthorized \(6\)/)
  })

  test('a revocation is visible on the next query', async () => {
    assert.match((await ocsp(later, ['-no_nonce'])).stdout, /ocsp-it-later\.crt: good/)
    inventory.set(await serialOf(later), { status: 'revoked', revokedAt: Date.now(), reason: 'keyCompromise' })
    const r = await ocsp(later, ['-no_nonce'])
    assert.match(r.stdout, /ocsp-it-later\.crt: revoked/)
    assert.match(r.stdout, /Reason: keyCompromise/)
  })

  test('GET with the url-encoded base64 request works and is cacheable until nextUpdate', async () => {
    const der = await makeRequest(good)
    const { status, headers, bodyFile } = await curlGet(encodeURIComponent(der.toString('base64')))
    assert.equal(status, 200)
    assert.match(headers, /content-type: application\/ocsp-response/)
    const maxAge = Number(/cache-control: max-age=(\d+), public, no-transform, must-revalidate/.exec(headers)?.[1])
    assert.ok(maxAge > 3500 && maxAge <= 3600, String(maxAge))
    assert.match(headers, /etag: "[0-9a-f]{64}"/)
    assert.match(headers, /expires: /)
    const text = await respText(bodyFile)
    assert.match(text.stdout, /Cert Status: good/)
    assert.match(text.stderr, /Response verify OK/)
  })

  test('GET also accepts the URL-safe base64 alphabet', async () => {
    const der = await makeRequest(revoked)
    const b64url = der.toString('base64url')
    const { status, bodyFile } = await curlGet(b64url)
    assert.equal(status, 200)
    assert.match((await respText(bodyFile)).stdout, /Cert Status: revoked/)
  })

  test('a response carrying a nonce or an unknown status is not cacheable', async () => {
    const withNonce = await makeRequest(good, ['-nonce'])
    const a = await curlGet(encodeURIComponent(withNonce.toString('base64')))
    assert.match(a.headers, /cache-control: no-store/)
    const unk = await makeRequest(unknown)
    const b = await curlGet(encodeURIComponent(unk.toString('base64')))
    assert.match(b.headers, /cache-control: no-store/)
  })

  test('a tampered or undecodable request gets malformedRequest', async () => {
    const der = await makeRequest(good)
    const tampered = Buffer.from(der)
    tampered[1] = (tampered[1] ?? 0) + 1 // outer length no longer matches
    for (const path of [encodeURIComponent(tampered.toString('base64')), 'not*base64', '%E0%A4%A', '']) {
      const { status, headers, bodyFile } = await curlGet(path)
      assert.equal(status, 200, path)
      assert.match(headers, /cache-control: no-store/)
      const r = await respText(bodyFile)
      assert.match(`${r.stdout}${r.stderr}`, /Responder Error: malformedrequest \(1\)/, path)
    }
  })

  test('POST refuses a wrong content type (415), an oversized body (413) and other methods (405)', async () => {
    const der = await makeRequest(good)
    const reqFile = join(pki.dir, `it-${++seq}.req`)
    writeFileSync(reqFile, der)
    const status = async (args: string[]): Promise<string> =>
      (await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '--max-time', '10', ...args, url])).stdout
    assert.equal(await status(['-H', 'Content-Type: application/octet-stream', '--data-binary', `@${reqFile}`]), '415')
    assert.equal(await status(['-H', 'Content-Type: application/ocsp-request', '--data-binary', `@${reqFile}`]), '200')
    const big = join(pki.dir, 'big.bin')
    writeFileSync(big, Buffer.alloc(8192, 0x30))
    assert.equal(await status(['-H', 'Content-Type: application/ocsp-request', '--data-binary', `@${big}`]), '413')
    // Chunked, so the limit is enforced while reading rather than from Content-Length.
    assert.equal(await status(['-H', 'Content-Type: application/ocsp-request', '-H', 'Transfer-Encoding: chunked', '--data-binary', `@${big}`]), '413')
    assert.equal(await status(['-X', 'PUT', '-H', 'Content-Type: application/ocsp-request', '--data-binary', `@${reqFile}`]), '405')
    const outside = (await run('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', `${url.replace('/ocsp/', '/elsewhere')}`])).stdout
    assert.equal(outside, '404')
  })
})
