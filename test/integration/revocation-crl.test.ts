/**
 * CRLs built by `buildCrl`, judged by `openssl verify -crl_check` the way a
 * relying party uses them, served by `createCrlHttpHandler` and fetched with
 * curl; rebuilt on revocation as `crlRegenerationReason` decides.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { createPrivateKey } from 'node:crypto'
import { writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { buildCrl, type RevokedEntry } from '../../src/pki/crl.js'
import { createCrlHttpHandler, type PublishedCrl } from '../../src/pki/crl-http.js'
import { crlRegenerationReason } from '../../src/pki/crl-publisher.js'
import { TestPki, pem, type CertFiles } from '../harness/pki.js'

const exec = promisify(execFile)

const pki = new TestPki()
const ca = pki.root('crl-it-ca')
const caKey = createPrivateKey(pem(ca.key))
const good = pki.client('crl-it-good', ca)
const revoked = pki.client('crl-it-revoked', ca)
const HOUR = 3_600_000

interface Result { code: number; out: string }

async function openssl(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await exec('openssl', args, { timeout: 10_000, encoding: 'utf8' })
    return { code: 0, out: `${stdout}${stderr}` }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: typeof e.code === 'number' ? e.code : -1, out: `${e.stdout}${e.stderr}` }
  }
}

async function serialOf(c: CertFiles): Promise<string> {
  return (await openssl(['x509', '-in', c.cert, '-noout', '-serial'])).out.trim().slice('serial='.length)
}

let n = 0
function save(pemText: string): string {
  const file = join(pki.dir, `it-${++n}.crl.pem`)
  writeFileSync(file, pemText)
  return file
}

/** `openssl verify` of `cert` against the CA and `crlFile`. */
function verify(cert: CertFiles, crlFile: string): Promise<Result> {
  return openssl(['verify', '-crl_check', '-CRLfile', crlFile, '-CAfile', ca.cert, cert.cert])
}

let published: PublishedCrl | undefined
let server: Server
let crlUrl: string

before(async () => {
  server = createServer(createCrlHttpHandler(() => published, { path: '/crl/issuing.crl', now: () => Date.now() }))
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  crlUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/crl/issuing.crl`
})

after(async () => {
  server.closeAllConnections()
  await new Promise<void>((resolve) => server.close(() => resolve()))
})

describe('CRL judged by openssl verify', { timeout: 60_000 }, () => {
  test('a revoked certificate fails with "certificate revoked" while a good one verifies', async () => {
    const now = Date.now()
    const entries: RevokedEntry[] = [{ serial: await serialOf(revoked), revokedAt: now - HOUR, reason: 'keyCompromise' }]
    const crl = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked: entries, crlNumber: 1n, thisUpdate: now - 60_000, nextUpdate: now + 24 * HOUR })
    const file = save(crl.pem)
    const bad = await verify(revoked, file)
    assert.notEqual(bad.code, 0)
    assert.match(bad.out, /error 23 at 0 depth lookup: certificate revoked/)
    const ok = await verify(good, file)
    assert.equal(ok.code, 0, ok.out)
    assert.match(ok.out, /: OK/)
  })

  test('a CRL past its nextUpdate is refused as expired, so nextUpdate is honoured', async () => {
    const now = Date.now()
    const crl = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked: [], crlNumber: 3n, thisUpdate: now - 2 * HOUR, nextUpdate: now - HOUR })
    const r = await verify(good, save(crl.pem))
    assert.notEqual(r.code, 0)
    assert.match(r.out, /error 12 at 0 depth lookup: CRL has expired/)
  })

  test('a revocation triggers a rebuild with a higher CRL number, served over HTTP and fetched by curl', async () => {
    const now = Date.now()
    let revision = 1
    const first = await buildCrl({ issuerCertPem: pem(ca.cert), issuerKey: caKey, revoked: [], crlNumber: 10n, thisUpdate: now - 60_000, nextUpdate: now + 24 * HOUR })
    let current = { thisUpdate: now - 60_000, nextUpdate: now + 24 * HOUR, revision }
    published = { der: first.der, thisUpdate: current.thisUpdate, nextUpdate: current.nextUpdate }

    const fetched = join(pki.dir, 'fetched-1.crl')
    const head1 = await exec('curl', ['-sS', '-D', '-', '-o', fetched, '--max-time', '10', crlUrl], { encoding: 'utf8' })
    assert.match(head1.stdout, /^HTTP\/1\.1 200/)
    assert.match(head1.stdout.toLowerCase(), /content-type: application\/pkix-crl/)
    assert.match(head1.stdout.toLowerCase(), /cache-control: max-age=\d+, public, no-transform, must-revalidate/)
    assert.equal((await verify(revoked, await derToPem(fetched))).code, 0)
    const etag = /etag: ("[0-9a-f]+")/i.exec(head1.stdout)?.[1] ?? ''
    const notModified = await exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, crlUrl], { encoding: 'utf8' })
    assert.equal(notModified.stdout, '304')

    // revoke → storage revision moves → the publisher's decision says rebuild
    revision += 1
    assert.equal(crlRegenerationReason(current, Date.now(), { latestRevision: revision }), 'revoked')
    const second = await buildCrl({
      issuerCertPem: pem(ca.cert), issuerKey: caKey, crlNumber: 11n, thisUpdate: Date.now() - 1000, nextUpdate: Date.now() + 24 * HOUR,
      revoked: [{ serial: await serialOf(revoked), revokedAt: Date.now(), reason: 'affiliationChanged' }],
    })
    current = { thisUpdate: Date.now() - 1000, nextUpdate: Date.now() + 24 * HOUR, revision }
    published = { der: second.der, thisUpdate: current.thisUpdate, nextUpdate: current.nextUpdate }
    assert.equal(crlRegenerationReason(current, Date.now(), { latestRevision: revision }), undefined)

    const fetched2 = join(pki.dir, 'fetched-2.crl')
    const changed = await exec('curl', ['-sS', '-o', fetched2, '-w', '%{http_code}', '-H', `If-None-Match: ${etag}`, crlUrl], { encoding: 'utf8' })
    assert.equal(changed.stdout, '200')
    const pemFile = await derToPem(fetched2)
    assert.match((await verify(revoked, pemFile)).out, /certificate revoked/)
    assert.match((await openssl(['crl', '-in', pemFile, '-noout', '-crlnumber'])).out, /crlNumber=0x0B/)
  })

  test('the CRL endpoint answers 503 before the first CRL exists and 404 elsewhere', async () => {
    const saved = published
    published = undefined
    try {
      const code = (args: string[]) => exec('curl', ['-sS', '-o', '/dev/null', '-w', '%{http_code}', ...args], { encoding: 'utf8' }).then((r) => r.stdout)
      assert.equal(await code([crlUrl]), '503')
      assert.equal(await code([crlUrl.replace('issuing.crl', 'other.crl')]), '404')
      assert.equal(await code(['-X', 'POST', crlUrl]), '405')
    } finally {
      published = saved
    }
  })
})

async function derToPem(derFile: string): Promise<string> {
  const out = `${derFile}.pem`
  const r = await openssl(['crl', '-inform', 'DER', '-in', derFile, '-out', out])
  assert.equal(r.code, 0, r.out)
  return out
}
