import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { parseTargetUrl } from './target.js'

describe('parseTargetUrl', () => {
  test('splits origin, path prefix (no trailing slash) and Host', () => {
    assert.deepEqual(parseTargetUrl('https://Orders.Internal:8443/api/v1/'), {
      origin: 'https://orders.internal:8443',
      pathPrefix: '/api/v1',
      hostHeader: 'orders.internal:8443',
      hostname: 'orders.internal',
      label: 'https://orders.internal:8443/api/v1',
    })
  })

  test('has an empty prefix for a bare origin and omits a default port', () => {
    const a = parseTargetUrl('http://10.0.0.5:80/')
    assert.equal(a.pathPrefix, '')
    assert.equal(a.hostHeader, '10.0.0.5')
    assert.equal(a.origin, 'http://10.0.0.5')
  })

  test('unwraps an IPv6 literal for the SNI decision but keeps brackets in Host', () => {
    const a = parseTargetUrl('https://[::1]:9443')
    assert.equal(a.hostname, '::1')
    assert.equal(a.hostHeader, '[::1]:9443')
  })
})
