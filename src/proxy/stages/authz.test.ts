import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Identity, Principal, RequestContext } from '../context.js'
import { authz, type AuthzOptions } from './authz.js'

const id: Identity = {
  subject: 'CN=partner-a,O=Acme', subjectFields: { CN: ['partner-a'], O: ['Acme'] }, issuer: 'CN=ca', serialNumber: '01',
  fingerprint256: 'ab'.repeat(32), san: { dns: [], uri: [], email: [], ip: [] }, notBefore: 0, notAfter: 1,
  der: Buffer.from('secret-looking-der'), chainDer: [],
}

function ctx(principal: Principal | undefined): RequestContext {
  return {
    id: 'r1', receivedAt: 0, method: 'GET', host: 'h', path: '/', query: '', params: {}, principal,
    conn: {
      listener: 'main', remoteAddress: '127.0.0.1', remotePort: 1, serverName: undefined, tlsVersion: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256', alpn: 'h2', isResumed: false, handshakeMs: 1, identity: id,
    },
  }
}

const mtls = (...names: string[]): Principal => ({ kind: 'mtls', identity: id, names })
const anonymous: Principal = { kind: 'anonymous' }
const base: AuthzOptions = { identities: [], allowAnyClientCert: false, allowAnonymous: false }

function outcome(opts: Partial<AuthzOptions>, p: Principal | undefined): string {
  const out = authz({ ...base, ...opts })(ctx(p))
  assert.ok(!(out instanceof Promise))
  return out?.reason ?? 'admitted'
}

test('decision table: deny by default, admit what the route names', () => {
  const table: [Partial<AuthzOptions>, Principal | undefined, string][] = [
    [{}, mtls('partner-a'), 'identity_denied'], // nothing listed: nobody
    [{}, anonymous, 'identity_denied'],
    [{}, undefined, 'identity_denied'], // authn did not run
    [{ identities: ['partner-a'] }, mtls('partner-a'), 'admitted'],
    [{ identities: ['partner-b'] }, mtls('partner-a'), 'identity_denied'],
    [{ identities: ['x', 'partner-a'] }, mtls('other', 'partner-a'), 'admitted'],
    [{ identities: ['partner-a'] }, mtls(), 'identity_denied'], // verified but unnamed
    [{ identities: ['partner-a'] }, anonymous, 'identity_denied'],
    [{ allowAnyClientCert: true }, mtls(), 'admitted'],
    [{ allowAnyClientCert: true }, anonymous, 'identity_denied'],
    [{ allowAnyClientCert: true }, undefined, 'identity_denied'],
    [{ allowAnonymous: true }, anonymous, 'admitted'],
    [{ allowAnonymous: true }, mtls(), 'admitted'], // a public route does not refuse callers with proof
    [{ allowAnonymous: true }, undefined, 'identity_denied'],
  ]
  for (const [opts, p, want] of table) assert.equal(outcome(opts, p), want, `${JSON.stringify(opts)} ${p?.kind ?? 'none'}`)
})

test('the denial detail names the subject and the route list, and carries no certificate bytes', () => {
  const out = authz({ ...base, identities: ['partner-b'] })(ctx(mtls('partner-a')))
  assert.ok(out && !(out instanceof Promise))
  assert.equal(out.reason, 'identity_denied')
  assert.ok(out.detail?.includes('CN=partner-a,O=Acme'))
  assert.ok(out.detail?.includes('partner-b'))
  assert.ok(!out.detail?.includes('secret-looking-der'))
  assert.equal(out.headers, undefined)
})
