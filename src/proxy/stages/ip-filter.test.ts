import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Connection, RequestContext } from '../context.js'
import { ipFilter } from './ip-filter.js'

function ctxFrom(remoteAddress: string): RequestContext {
  const conn: Connection = {
    listener: 'main', remoteAddress, remotePort: 40000, serverName: undefined, tlsVersion: 'TLSv1.3',
    cipher: 'TLS_AES_128_GCM_SHA256', alpn: 'h2', isResumed: false, handshakeMs: 1, identity: undefined,
  }
  return { id: 'r1', receivedAt: 0, conn, method: 'GET', host: 'h', path: '/', query: '', params: {} }
}

const outcome = (stage: ReturnType<typeof ipFilter>, addr: string) => {
  const out = stage(ctxFrom(addr))
  assert.ok(!(out instanceof Promise))
  return out?.reason ?? 'admitted'
}

test('admits only addresses in the allow list', () => {
  const stage = ipFilter({ allow: ['10.0.0.0/8', '2001:db8::/32'], deny: [] })
  assert.equal(outcome(stage, '10.1.2.3'), 'admitted')
  assert.equal(outcome(stage, '::ffff:10.1.2.3'), 'admitted')
  assert.equal(outcome(stage, '2001:db8::5'), 'admitted')
  assert.equal(outcome(stage, '11.0.0.1'), 'ip_denied')
  assert.equal(outcome(stage, '::ffff:11.0.0.1'), 'ip_denied')
  assert.equal(outcome(stage, '2001:db9::1'), 'ip_denied')
})

test('refuses deny-listed addresses before consulting the allow list', () => {
  const stage = ipFilter({ allow: ['10.0.0.0/8'], deny: ['10.6.6.0/24'] })
  const out = stage(ctxFrom('10.6.6.6'))
  assert.ok(out && !(out instanceof Promise))
  assert.equal(out.reason, 'ip_denied')
  assert.match(out.detail ?? '', /deny/)
  assert.equal(outcome(stage, '10.6.7.1'), 'admitted')
  const denyOnly = ipFilter({ allow: [], deny: ['192.0.2.1'] })
  assert.equal(outcome(denyOnly, '192.0.2.1'), 'ip_denied')
  assert.equal(outcome(denyOnly, '::ffff:192.0.2.1'), 'ip_denied')
  assert.equal(outcome(denyOnly, '192.0.2.2'), 'admitted')
})

test('refuses a peer address that is not an IP literal', () => {
  assert.equal(outcome(ipFilter({ allow: [], deny: ['192.0.2.1'] }), 'not-an-ip'), 'ip_denied')
  assert.equal(outcome(ipFilter({ allow: [], deny: ['192.0.2.1'] }), ''), 'ip_denied')
})

test('throws at compile time on a malformed rule', () => {
  assert.throws(() => ipFilter({ allow: ['10.0.0.0/33'], deny: [] }))
  assert.throws(() => ipFilter({ allow: [], deny: ['not-an-ip'] }))
})

test('every request of a connection gets that connection’s verdict; other connections are judged on their own', () => {
  const stage = ipFilter({ allow: ['10.0.0.0/8'], deny: [] })
  const inside = ctxFrom('10.0.0.1')
  const outside = ctxFrom('11.0.0.1')
  for (let i = 0; i < 3; i++) {
    assert.equal(stage({ ...inside, id: `r${i}` }), undefined, 'a later request on the admitted connection')
    assert.equal((stage({ ...outside, id: `r${i}` }) as { reason: string } | undefined)?.reason, 'ip_denied', 'a later request on the refused connection')
  }
  // A reload compiles a new stage: new rules apply to the same connection at once.
  const reloaded = ipFilter({ allow: ['11.0.0.0/8'], deny: [] })
  assert.equal((reloaded(inside) as { reason: string } | undefined)?.reason, 'ip_denied')
  assert.equal(reloaded(outside), undefined)
})
