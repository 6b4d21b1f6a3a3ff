import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import { createSecureServer, connect as h2connect } from 'node:http2'
import { request as httpsRequest } from 'node:https'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { createLocalJWKSet, jwtVerify } from 'jose'
import { request } from 'undici'
import { TestPki, pem } from '../../test/harness/pki.js'
import { identityOf } from '../../test/integration/test-identity.js'
import type { RouteConfig } from '../config/schema/index.js'
import { FixedClock } from '../shared/clock.js'
import type { Identity, Principal, RequestContext } from './context.js'
import { IdentityAssertionSigner } from './identity-assertion.js'
import { HeaderPolicyError, buildUpstreamHeaders, compileHeaderPolicy, type HeaderPolicy, type HeaderSource, type UpstreamHeaders } from './upstream-headers.js'

type HeadersConfig = RouteConfig['headers']
const defaults: HeadersConfig = { forwarded: 'x-forwarded', clientCert: true, xfcc: false, identityAssertion: false, set: {}, remove: [] }
const policyOf = (over: Partial<HeadersConfig> = {}, opts: { trustedProxies?: string[]; assertion?: IdentityAssertionSigner } = {}) =>
  compileHeaderPolicy({ ...defaults, ...over }, { trustedProxies: opts.trustedProxies ?? [], assertion: opts.assertion, upstreamName: 'orders' })

function ctxOf(opts: { principal?: Principal; remoteAddress?: string; id?: string; host?: string } = {}): RequestContext {
  return {
    id: opts.id ?? 'req-1',
    receivedAt: 0,
    conn: {
      listener: 'edge',
      remoteAddress: opts.remoteAddress ?? '203.0.113.7',
      remotePort: 50000,
      serverName: 'api.example',
      tlsVersion: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256',
      alpn: 'http/1.1',
      isResumed: false,
      handshakeMs: 1,
      identity: opts.principal?.kind === 'mtls' ? opts.principal.identity : undefined,
    },
    method: 'GET',
    host: opts.host ?? 'api.example',
    path: '/',
    query: '',
    params: {},
    principal: opts.principal,
  }
}

/** An HTTP/1 header source as Node's parser gives it: rawHeaders in wire case, headers lowercased and joined. */
function h1(raw: string[]): HeaderSource {
  const headers: IncomingHttpHeaders = {}
  for (let i = 0; i < raw.length; i += 2) {
    const k = raw[i]!.toLowerCase()
    const v = raw[i + 1]!
    const prev = headers[k]
    headers[k] = prev === undefined ? v : `${String(prev)}, ${v}`
  }
  return { rawHeaders: raw, headers }
}

async function build(ctx: RequestContext, req: HeaderSource, policy: HeaderPolicy): Promise<UpstreamHeaders> {
  return buildUpstreamHeaders(ctx, req, policy)
}

describe('buildUpstreamHeaders', { timeout: 60_000 }, () => {
  const pki = new TestPki()
  let identity: Identity
  let mtls: Principal
  let intermediateDer: Buffer

  before(() => {
    const root = pki.root('hdr-root')
    const inter = pki.intermediate('hdr-inter', root)
    const leaf = pki.client('orders-client', inter, { san: 'URI:spiffe://td.test/ns/shop/sa/orders,DNS:orders.internal,DNS:orders-2.internal' }, [inter])
    identity = identityOf(leaf.cert, [inter.cert])
    intermediateDer = identity.chainDer[0]!
    mtls = { kind: 'mtls', identity, names: ['orders'] }
  })

  test('drops hop-by-hop headers, what Connection names, and Host; keeps end-to-end headers', async () => {
    const req = h1([
      'Host', 'api.example',
      'Connection', 'keep-alive, X-Secret-Hop',
      'Keep-Alive', 'timeout=5',
      'Proxy-Connection', 'keep-alive',
      'TE', 'gzip, trailers',
      'Upgrade', 'websocket',
      'Proxy-Authorization', 'Basic cHJveHk6cHc=',
      'Expect', '100-continue',
      'X-Secret-Hop', 'hop only',
      'Trailer', 'X-Checksum',
      'Accept', 'application/json',
      'Authorization', 'Bearer abc',
      'Content-Length', '42',
    ])
    const out = await build(ctxOf(), req, policyOf())
    for (const gone of ['host', 'connection', 'keep-alive', 'proxy-connection', 'upgrade', 'proxy-authorization', 'expect', 'x-secret-hop', 'trailer', 'transfer-encoding']) {
      assert.equal(out[gone], undefined, gone)
    }
    assert.equal(out.te, 'trailers')
    assert.equal(out.accept, 'application/json')
    assert.equal(out.authorization, 'Bearer abc')
    assert.equal(out['content-length'], '42')
  })

  test('drops TE without "trailers" and a chunked Transfer-Encoding (the upstream client re-frames)', async () => {
    const out = await build(ctxOf(), h1(['Host', 'a', 'TE', 'gzip', 'Transfer-Encoding', 'chunked']), policyOf())
    assert.equal(out.te, undefined)
    assert.equal(out['transfer-encoding'], undefined)
    assert.equal(out['content-length'], undefined)
  })

  test('drops every client-sent identity header, even with no certificate on the connection', async () => {
    const spoofed = [
      'Client-Cert', ':AAAA:',
      'Client-Cert-Chain', ':AAAA:',
      'X-Forwarded-Client-Cert', 'Hash=00;Subject="CN=admin"',
      'Portcullis-Identity', 'eyJ.forged.jwt',
      'Portcullis-Anything', 'x',
      'X-Client-Cert-Subject', 'CN=admin',
      'X-Client-Certificate', 'x',
      'X-SSL-Client-Verify', 'SUCCESS',
      'X-SSL-Client-S-DN', 'CN=admin',
      'X-Forwarded-TLS-Client-Cert', 'x',
      'X-Amzn-Mtls-Clientcert', 'x',
      'SSL-Client-Cert', 'x',
      'X-ARR-ClientCert', 'x',
    ]
    for (const principal of [undefined, { kind: 'anonymous' } as const]) {
      const out = await build(ctxOf({ principal }), h1(['Host', 'a', ...spoofed, 'X-Client-Version', '3']), policyOf({ xfcc: true }))
      assert.deepEqual(Object.keys(out).sort(), ['x-client-version', 'x-forwarded-for', 'x-forwarded-host', 'x-forwarded-proto', 'x-request-id'])
    }
  })

  test('replaces forwarding headers from an untrusted peer with what the gateway saw', async () => {
    const req = h1([
      'Host', 'API.example:8443',
      'X-Forwarded-For', '1.2.3.4',
      'X-Forwarded-Proto', 'http',
      'X-Forwarded-Host', 'evil.example',
      'X-Forwarded-Port', '80',
      'Forwarded', 'for=1.2.3.4',
      'X-Real-IP', '1.2.3.4',
      'X-Request-Id', 'client-chosen',
    ])
    const out = await build(ctxOf({ id: 'req-9' }), req, policyOf())
    assert.equal(out['x-forwarded-for'], '203.0.113.7')
    assert.equal(out['x-forwarded-proto'], 'https')
    assert.equal(out['x-forwarded-host'], 'api.example:8443')
    assert.equal(out['x-forwarded-port'], undefined)
    assert.equal(out.forwarded, undefined)
    assert.equal(out['x-real-ip'], undefined)
    assert.equal(out['x-request-id'], 'req-9')
  })

  test('extends the chain from a trusted proxy (IPv4-mapped peer address) and keeps its proto and host', async () => {
    const req = h1([
      'Host', 'api.example',
      'X-Forwarded-For', '198.51.100.1',
      'x-forwarded-for', '192.0.2.9',
      'X-Forwarded-Proto', 'https',
      'X-Forwarded-Host', 'public.example',
      'X-Real-IP', '198.51.100.1',
    ])
    const out = await build(ctxOf({ remoteAddress: '::ffff:10.1.2.3' }), req, policyOf({}, { trustedProxies: ['10.0.0.0/8'] }))
    assert.equal(out['x-forwarded-for'], '198.51.100.1, 192.0.2.9, 10.1.2.3')
    assert.equal(out['x-forwarded-host'], 'public.example')
    assert.equal(out['x-forwarded-proto'], 'https')
    assert.equal(out['x-real-ip'], '198.51.100.1')
    const untrusted = await build(ctxOf({ remoteAddress: '::ffff:11.1.2.3' }), req, policyOf({}, { trustedProxies: ['10.0.0.0/8'] }))
    assert.equal(untrusted['x-forwarded-for'], '11.1.2.3')
    assert.equal(untrusted['x-forwarded-host'], 'api.example')
  })

  test('writes RFC 7239 Forwarded with a quoted IPv6 node and quoted host:port, and no X-Forwarded-* in that mode', async () => {
    const req = h1(['Host', 'api.example:8443', 'X-Forwarded-For', '1.2.3.4'])
    const out = await build(ctxOf({ remoteAddress: '2001:db8::1' }), req, policyOf({ forwarded: 'forwarded' }))
    assert.equal(out.forwarded, 'for="[2001:db8::1]";host="api.example:8443";proto=https')
    assert.equal(out['x-forwarded-for'], undefined)
    assert.equal(out['x-forwarded-proto'], undefined)
    const v4 = await build(ctxOf(), h1(['Host', 'api.example']), policyOf({ forwarded: 'both' }))
    assert.equal(v4.forwarded, 'for=203.0.113.7;host=api.example;proto=https')
    assert.equal(v4['x-forwarded-for'], '203.0.113.7')
  })

  test('appends to a trusted proxy\'s Forwarded and drops it in x-forwarded mode', async () => {
    const req = h1(['Host', 'api.example', 'Forwarded', 'for=198.51.100.1;proto=https'])
    const opts = { trustedProxies: ['10.0.0.1'] }
    const out = await build(ctxOf({ remoteAddress: '10.0.0.1' }), req, policyOf({ forwarded: 'forwarded' }, opts))
    assert.equal(out.forwarded, 'for=198.51.100.1;proto=https, for=10.0.0.1;host=api.example;proto=https')
    const xOnly = await build(ctxOf({ remoteAddress: '10.0.0.1' }), req, policyOf({}, opts))
    assert.equal(xOnly.forwarded, undefined)
  })

  test('HTTP/2: drops pseudo-headers, joins cookies with "; ", keeps other repeats as a list, uses :authority', async () => {
    const req: HeaderSource = {
      rawHeaders: [':method', 'POST', ':scheme', 'https', ':path', '/x', ':authority', 'api.example', 'cookie', 'a=1', 'cookie', 'b=2', 'x-multi', 'one', 'x-multi', 'two', 'content-length', '3'],
      headers: { ':method': 'POST', ':authority': 'api.example', cookie: 'a=1; b=2', 'x-multi': 'one, two', 'content-length': '3' },
    }
    const out = await build(ctxOf(), req, policyOf())
    assert.equal(Object.keys(out).some((k) => k.startsWith(':')), false)
    assert.equal(out.cookie, 'a=1; b=2')
    assert.deepEqual(out['x-multi'], ['one', 'two'])
    assert.equal(out['content-length'], '3')
    assert.equal(out['x-forwarded-host'], 'api.example')
  })

  test('a header named __proto__ stays a header and pollutes nothing', async () => {
    const out = await build(ctxOf(), h1(['Host', 'a', '__proto__', 'x', 'constructor', 'y']), policyOf())
    assert.equal(Object.getPrototypeOf(out), null)
    assert.equal(out['__proto__'], 'x')
    assert.equal(out['constructor'], 'y')
    assert.equal(({} as Record<string, unknown>).x, undefined)
  })

  test('refuses to forward a Content-Length that framing should have refused', () => {
    assert.throws(() => buildUpstreamHeaders(ctxOf(), h1(['Host', 'a', 'Content-Length', '05']), policyOf()))
  })

  test('sends RFC 9440 Client-Cert and Client-Cert-Chain for an mTLS principal', async () => {
    const out = await build(ctxOf({ principal: mtls }), h1(['Host', 'a', 'Client-Cert', ':Zm9yZ2Vk:']), policyOf())
    const cert = String(out['client-cert'])
    assert.match(cert, /^:[A-Za-z0-9+/]+=*:$/)
    assert.deepEqual(Buffer.from(cert.slice(1, -1), 'base64'), identity.der)
    const chain = String(out['client-cert-chain']).split(', ')
    assert.equal(chain.length, 1)
    assert.deepEqual(Buffer.from(chain[0]!.slice(1, -1), 'base64'), intermediateDer)
    assert.equal(out['x-forwarded-client-cert'], undefined)
    const off = await build(ctxOf({ principal: mtls }), h1(['Host', 'a']), policyOf({ clientCert: false }))
    assert.equal(off['client-cert'], undefined)
    assert.equal(off['client-cert-chain'], undefined)
  })

  test('omits Client-Cert-Chain when the client sent no intermediates', async () => {
    const leafOnly = { kind: 'mtls', identity: { ...identity, chainDer: [] }, names: [] } as const
    const out = await build(ctxOf({ principal: leafOnly }), h1(['Host', 'a']), policyOf())
    assert.ok(out['client-cert'])
    assert.equal(out['client-cert-chain'], undefined)
  })

  test('sends an Envoy-style X-Forwarded-Client-Cert when enabled', async () => {
    const out = await build(ctxOf({ principal: mtls }), h1(['Host', 'a', 'X-Forwarded-Client-Cert', 'By=x;Hash=00']), policyOf({ xfcc: true, clientCert: false }))
    const hash = createHash('sha256').update(identity.der).digest('hex')
    assert.equal(
      out['x-forwarded-client-cert'],
      `Hash=${hash};Subject="${identity.subject}";URI=spiffe://td.test/ns/shop/sa/orders;DNS=orders.internal;DNS=orders-2.internal`,
    )
    assert.equal(out['client-cert'], undefined)
  })

  test('sends Portcullis-Identity signed for the upstream, synchronously once cached', async () => {
    const clock = new FixedClock(Date.now())
    const signer = await IdentityAssertionSigner.create({ issuer: 'https://gw.test', ttl: 60_000, jwksPath: '/jwks' }, { source: { baseDir: pki.dir, env: {} }, clock })
    const policy = policyOf({ identityAssertion: true, clientCert: false }, { assertion: signer })
    const first = buildUpstreamHeaders(ctxOf({ principal: mtls }), h1(['Host', 'a', 'Portcullis-Identity', 'forged']), policy)
    assert.ok(first instanceof Promise)
    const out = await first
    const { payload } = await jwtVerify(String(out['portcullis-identity']), createLocalJWKSet(signer.jwks() as never), {
      audience: 'orders',
      issuer: 'https://gw.test',
      currentDate: new Date(clock.now()),
    })
    assert.equal(payload.sub, 'spiffe://td.test/ns/shop/sa/orders')
    const second = buildUpstreamHeaders(ctxOf({ principal: mtls }), h1(['Host', 'a']), policy)
    assert.ok(!(second instanceof Promise), 'a cached token keeps the build synchronous')
    assert.equal(second['portcullis-identity'], out['portcullis-identity'])
    const anonymous = buildUpstreamHeaders(ctxOf({ principal: { kind: 'anonymous' } }), h1(['Host', 'a', 'Portcullis-Identity', 'forged']), policy)
    assert.ok(!(anonymous instanceof Promise))
    assert.equal(anonymous['portcullis-identity'], undefined)
  })

  test('applies the route\'s set and remove to end-to-end headers', async () => {
    const policy = policyOf({ set: { 'X-Tenant': 'acme', Accept: 'application/json' }, remove: ['Cookie', 'x-debug'] })
    const out = await build(ctxOf(), h1(['Host', 'a', 'Accept', 'text/html', 'Cookie', 'a=1', 'X-Debug', '1', 'X-Keep', 'k']), policy)
    assert.equal(out['x-tenant'], 'acme')
    assert.equal(out.accept, 'application/json')
    assert.equal(out.cookie, undefined)
    assert.equal(out['x-debug'], undefined)
    assert.equal(out['x-keep'], 'k')
  })

  describe('compileHeaderPolicy refuses', () => {
    const refusals: [string, Partial<HeadersConfig>, string][] = [
      ['set of X-Forwarded-For', { set: { 'X-Forwarded-For': '1.2.3.4' } }, 'set.X-Forwarded-For'],
      ['set of Client-Cert', { set: { 'Client-Cert': ':AA:' } }, 'set.Client-Cert'],
      ['set of Portcullis-Identity', { set: { 'portcullis-identity': 'x' } }, 'set.portcullis-identity'],
      ['set of an X-SSL-* header', { set: { 'X-SSL-Client-Verify': 'SUCCESS' } }, 'set.X-SSL-Client-Verify'],
      ['set of Host', { set: { Host: 'other' } }, 'set.Host'],
      ['set of Content-Length', { set: { 'Content-Length': '0' } }, 'set.Content-Length'],
      ['set of X-Request-Id', { set: { 'X-Request-Id': 'fixed' } }, 'set.X-Request-Id'],
      ['set of Forwarded', { set: { Forwarded: 'for=1.2.3.4' } }, 'set.Forwarded'],
      ['set with a CR in the value', { set: { 'X-A': 'a\r\nX-Injected: 1' } }, 'set.X-A'],
      ['set with obs-text in the value', { set: { 'X-B': 'caf\u00e9' } }, 'set.X-B'],
      ['set with a space in the name', { set: { 'X C': 'b' } }, 'set.X C'],
      ['remove of X-Forwarded-For', { remove: ['X-Forwarded-For'] }, 'remove.X-Forwarded-For'],
      ['remove of Content-Length', { remove: ['content-length'] }, 'remove.content-length'],
      ['a name both set and removed', { set: { 'X-D': 'b' }, remove: ['x-d'] }, 'set.X-D'],
      ['identityAssertion without a signer', { identityAssertion: true }, 'identityAssertion'],
    ]
    for (const [name, over, key] of refusals) {
      test(name, () => assert.throws(() => policyOf(over), (err: unknown) => err instanceof HeaderPolicyError && err.key === key))
    }
    test('a trusted proxy that is not an address', () => {
      assert.throws(
        () => policyOf({}, { trustedProxies: ['10.0.0.0/8', 'proxy.internal'] }),
        (err: unknown) => err instanceof HeaderPolicyError && err.key === 'trustedProxies',
      )
    })
    test('nothing for end-to-end names', () => {
      assert.doesNotThrow(() => policyOf({ set: { 'X-Tenant': 'acme' }, remove: ['Cookie', 'Authorization'] }))
    })
  })

  /**
   * End to end through real parsers: a real HTTP/1.1 and HTTP/2 request into
   * Node, its headers rebuilt, then sent by undici to a real HTTP/1.1 server.
   * Proves undici accepts what we build (it throws on some hop-by-hop names).
   */
  describe('through Node and undici', () => {
    const recorded: IncomingHttpHeaders[] = []
    const upstream = createServer((req, res) => {
      recorded.push(req.headers)
      res.end('ok')
    })
    let gateway: ReturnType<typeof createSecureServer>
    let gatewayPort = 0

    before(async () => {
      await new Promise<void>((resolve) => upstream.listen(0, '127.0.0.1', resolve))
      const upstreamUrl = `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`
      const serverCert = pki.server('localhost', pki.root('hdr-server-root'))
      const policy = policyOf({ forwarded: 'both', xfcc: true })
      gateway = createSecureServer({ key: pem(serverCert.key), cert: pem(serverCert.cert), allowHTTP1: true }, (req, res) => {
        const ctx = ctxOf({ principal: mtls, remoteAddress: req.socket.remoteAddress ?? '' })
        Promise.resolve(buildUpstreamHeaders(ctx, req, policy))
          .then((headers) => request(upstreamUrl, { method: 'POST', headers, body: req }))
          .then(async (r) => {
            await r.body.text()
            res.end(String(r.statusCode))
          })
          .catch((err: Error) => {
            res.statusCode = 500
            res.end(err.message)
          })
      })
      await new Promise<void>((resolve) => gateway.listen(0, '127.0.0.1', resolve))
      gatewayPort = (gateway.address() as AddressInfo).port
    })
    after(async () => {
      await new Promise<void>((resolve) => gateway.close(() => resolve()))
      upstream.closeAllConnections()
      await new Promise<void>((resolve) => upstream.close(() => resolve()))
    })

    const spoof = {
      'client-cert': ':Zm9yZ2Vk:',
      'x-forwarded-for': '1.2.3.4',
      'x-forwarded-client-cert': 'Hash=00',
      'x-ssl-client-verify': 'SUCCESS',
      te: 'trailers',
      'x-multi': ['one', 'two'],
      cookie: 'a=1',
    }

    function check(headers: IncomingHttpHeaders): void {
      assert.equal(headers['client-cert'], `:${identity.der.toString('base64')}:`)
      assert.equal(headers['x-forwarded-for'], '127.0.0.1')
      assert.equal(headers.forwarded, 'for=127.0.0.1;host=localhost;proto=https')
      assert.ok(String(headers['x-forwarded-client-cert']).startsWith(`Hash=${identity.fingerprint256};`))
      assert.equal(headers['x-ssl-client-verify'], undefined)
      assert.equal(headers['x-request-id'], 'req-1')
      assert.equal(headers['x-multi'], 'one, two')
      assert.equal(headers.te, 'trailers')
      assert.equal(headers['content-length'], '5')
      assert.equal(headers.host?.startsWith('127.0.0.1:'), true, 'undici sets Host from the target')
    }

    test('an HTTP/1.1 request', async () => {
      recorded.length = 0
      const res = await new Promise<string>((resolve, reject) => {
        const r = httpsRequest(
          { host: '127.0.0.1', port: gatewayPort, method: 'POST', path: '/', servername: 'localhost', rejectUnauthorized: false, headers: { host: 'localhost', ...spoof, 'content-length': '5', connection: 'keep-alive' } },
          (response) => {
            let text = ''
            response.on('data', (d: Buffer) => (text += d.toString()))
            response.on('end', () => resolve(text))
          },
        )
        r.on('error', reject)
        r.end('hello')
      })
      assert.equal(res, '200')
      assert.equal(recorded.length, 1)
      check(recorded[0]!)
    })

    test('an HTTP/2 request', async () => {
      recorded.length = 0
      const session = h2connect(`https://127.0.0.1:${gatewayPort}`, { rejectUnauthorized: false, servername: 'localhost' })
      try {
        const stream = session.request({ ':method': 'POST', ':path': '/', ':authority': 'localhost', ...spoof, 'content-length': '5' })
        stream.end('hello')
        let text = ''
        stream.on('data', (d: Buffer) => (text += d.toString()))
        await new Promise((resolve) => stream.on('end', resolve))
        assert.equal(text, '200')
      } finally {
        session.close()
      }
      assert.equal(recorded.length, 1)
      check(recorded[0]!)
    })
  })
})
