import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Identity, RequestContext } from '../../context.js'
import { mtlsAuthn } from './mtls.js'

const NOW = Date.UTC(2030, 0, 1)

function identity(): Identity {
  return {
    subject: 'CN=svc', subjectFields: { CN: ['svc'] }, issuer: 'CN=ca', serialNumber: '01', fingerprint256: 'ab'.repeat(32),
    san: { dns: [], uri: [], email: [], ip: [] }, notBefore: NOW - 86_400_000, notAfter: NOW + 86_400_000, der: Buffer.alloc(0), chainDer: [],
  }
}

function ctx(id: Identity | undefined, receivedAt = NOW): RequestContext {
  return {
    id: 'r1', receivedAt, method: 'GET', host: 'h', path: '/', query: '', params: {},
    conn: {
      listener: 'main', remoteAddress: '127.0.0.1', remotePort: 1, serverName: undefined, tlsVersion: 'TLSv1.3',
      cipher: 'TLS_AES_128_GCM_SHA256', alpn: 'h2', isResumed: false, handshakeMs: 1, identity: id,
    },
  }
}

const names = (id: Identity) => (id.subject === 'CN=svc' ? ['svc'] : [])

test('sets an mtls principal with the identity names of the connection certificate', () => {
  const id = identity()
  const c = ctx(id)
  assert.equal(mtlsAuthn({ allowAnonymous: false, match: names })(c), undefined)
  assert.deepEqual(c.principal, { kind: 'mtls', identity: id, names: ['svc'] })
})

test('keeps a presented certificate as the principal on a route that allows anonymous callers', () => {
  const c = ctx(identity())
  assert.equal(mtlsAuthn({ allowAnonymous: true, match: names })(c), undefined)
  assert.equal(c.principal?.kind, 'mtls')
})

test('answers client_cert_required without a certificate unless anonymous callers are allowed', () => {
  const denied = ctx(undefined)
  assert.equal((mtlsAuthn({ allowAnonymous: false, match: names })(denied) as { reason: string }).reason, 'client_cert_required')
  assert.equal(denied.principal, undefined)
  const admitted = ctx(undefined)
  assert.equal(mtlsAuthn({ allowAnonymous: true, match: names })(admitted), undefined)
  assert.deepEqual(admitted.principal, { kind: 'anonymous' })
})

test('refuses a certificate that expired while the connection stayed open', () => {
  const id = identity()
  const stage = mtlsAuthn({ allowAnonymous: true, match: names })
  const late = ctx(id, id.notAfter + 1)
  assert.equal((stage(late) as { reason: string }).reason, 'cert_expired')
  assert.equal(late.principal, undefined)
  assert.equal(stage(ctx(id, id.notAfter)), undefined) // notAfter itself is still valid (RFC 5280 4.1.2.5)
  assert.equal((stage(ctx(id, id.notBefore - 1)) as { reason: string }).reason, 'cert_not_yet_valid')
})
