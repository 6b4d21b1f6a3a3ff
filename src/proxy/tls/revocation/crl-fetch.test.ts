/**
 * CRL downloads against real HTTP servers on loopback: size cap (declared
 * and streamed), redirects (followed to http(s) only, at most 3), timeouts
 * and refused connections, each with the cause an operator reads.
 */
import assert from 'node:assert/strict'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, it } from 'node:test'
import { CrlFetchError, fetchCrl } from './crl-fetch.js'

let server: Server
let base = ''
const limits = { timeoutMs: 1000, maxBytes: 1000 }

before(async () => {
  server = createServer((req, res) => {
    const url = req.url ?? ''
    if (url === '/ok') res.end(Buffer.alloc(600, 7))
    else if (url === '/declared-big') res.writeHead(200, { 'content-length': 5000 }).end(Buffer.alloc(5000))
    else if (url === '/streamed-big') {
      res.writeHead(200)
      for (let i = 0; i < 10; i++) res.write(Buffer.alloc(500))
      res.end()
    } else if (url === '/to-ok') res.writeHead(302, { location: '/ok' }).end()
    else if (url === '/to-ftp') res.writeHead(301, { location: 'ftp://example.com/ca.crl' }).end()
    else if (url.startsWith('/loop')) res.writeHead(302, { location: `/loop${url.length}` }).end()
    else if (url === '/silent') return // never answers
    else res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
})

after(() => {
  server.closeAllConnections()
  server.close()
})

async function cause(url: string, l = limits): Promise<string> {
  const err = await fetchCrl(url, l).then(
    () => undefined,
    (e: unknown) => e,
  )
  assert.ok(err instanceof CrlFetchError, `expected a CrlFetchError for ${url}, got ${String(err)}`)
  return err.message
}

describe('fetchCrl', () => {
  it('returns the body, following a redirect to http', async () => {
    assert.equal((await fetchCrl(`${base}/ok`, limits)).length, 600)
    assert.equal((await fetchCrl(`${base}/to-ok`, limits)).length, 600)
  })

  it('refuses bodies over maxBytes, declared or streamed', async () => {
    assert.match(await cause(`${base}/declared-big`), /5000 bytes, more than maxCrlSize 1000/)
    assert.match(await cause(`${base}/streamed-big`), /more than maxCrlSize 1000/)
  })

  it('refuses redirects to other schemes and endless redirects', async () => {
    assert.match(await cause(`${base}/to-ftp`), /redirect to ftp: not followed/)
    assert.match(await cause(`${base}/loop`), /more than 3 redirects/)
  })

  it('names HTTP errors, timeouts and refused connections', async () => {
    assert.match(await cause(`${base}/missing`), /^HTTP 404$/)
    const started = Date.now()
    assert.match(await cause(`${base}/silent`, { timeoutMs: 300, maxBytes: 1000 }), /^unreachable: timed out$/)
    assert.ok(Date.now() - started < 2000, 'within about the timeout')
    const dead = createServer()
    await new Promise<void>((resolve) => dead.listen(0, '127.0.0.1', resolve))
    const port = (dead.address() as AddressInfo).port
    await new Promise((resolve) => dead.close(resolve))
    assert.match(await cause(`http://127.0.0.1:${port}/ca.crl`), /^unreachable: ECONNREFUSED$/)
    assert.match(await cause('ldap://ldap.example/cn=ca'), /is not an http\(s\) URL/)
  })
})
