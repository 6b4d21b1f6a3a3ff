import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { errors } from 'undici'
import { isConnectPhase, isIdempotent, isTargetFault, PIN_MISMATCH_CODE, reasonForCode, reasonForError } from './classify.js'

describe('reasonForCode', () => {
  const cases: [string, string][] = [
    ['ECONNREFUSED', 'upstream_connect_failed'],
    ['ENOTFOUND', 'upstream_connect_failed'],
    ['EAI_AGAIN', 'upstream_connect_failed'],
    ['UND_ERR_CONNECT_TIMEOUT', 'upstream_connect_failed'],
    ['DEPTH_ZERO_SELF_SIGNED_CERT', 'upstream_tls_failed'],
    ['UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'upstream_tls_failed'],
    ['ERR_TLS_CERT_ALTNAME_INVALID', 'upstream_tls_failed'],
    ['ERR_SSL_TLSV13_ALERT_CERTIFICATE_REQUIRED', 'upstream_tls_failed'],
    ['ERR_SSL_WRONG_VERSION_NUMBER', 'upstream_tls_failed'],
    [PIN_MISMATCH_CODE, 'upstream_tls_failed'],
    ['UND_ERR_HEADERS_TIMEOUT', 'upstream_timeout'],
    ['UND_ERR_BODY_TIMEOUT', 'upstream_timeout'],
    ['ECONNRESET', 'upstream_reset'],
    ['UND_ERR_SOCKET', 'upstream_reset'],
    ['EPIPE', 'upstream_reset'],
    ['HPE_INVALID_CONSTANT', 'upstream_bad_response'],
    ['HPE_INVALID_HEADER_TOKEN', 'upstream_bad_response'],
    ['UND_ERR_HEADERS_OVERFLOW', 'upstream_bad_response'],
    ['UND_ERR_RES_CONTENT_LENGTH_MISMATCH', 'upstream_bad_response'],
    ['UND_ERR_DESTROYED', 'upstream_unavailable'],
    ['UND_ERR_CLOSED', 'upstream_unavailable'],
    ['UND_ERR_ABORTED', 'client_closed'],
    ['UND_ERR_REQ_CONTENT_LENGTH_MISMATCH', 'bad_request'],
    ['UND_ERR_INVALID_ARG', 'internal_error'],
  ]
  for (const [code, reason] of cases) {
    test(`maps ${code} to ${reason}`, () => assert.equal(reasonForCode(code), reason))
  }

  test('leaves unknown or missing codes to the caller', () => {
    assert.equal(reasonForCode('ESOMETHINGNEW'), undefined)
    assert.equal(reasonForCode(undefined), undefined)
    assert.equal(reasonForCode(42), undefined)
  })
})

describe('fault and retry classes', () => {
  test('only upstream-side reasons count against a target', () => {
    for (const r of ['upstream_connect_failed', 'upstream_tls_failed', 'upstream_reset', 'upstream_timeout', 'upstream_bad_response'] as const) {
      assert.equal(isTargetFault(r), true, r)
    }
    for (const r of ['client_closed', 'request_timeout', 'bad_request', 'upstream_unavailable', 'internal_error'] as const) {
      assert.equal(isTargetFault(r), false, r)
    }
  })

  test('connect and TLS failures are connect-phase; a reset or timeout is not', () => {
    assert.equal(isConnectPhase('upstream_connect_failed'), true)
    assert.equal(isConnectPhase('upstream_tls_failed'), true)
    assert.equal(isConnectPhase('upstream_reset'), false)
    assert.equal(isConnectPhase('upstream_timeout'), false)
  })

  test('idempotent methods are those of RFC 9110 section 9.2.2', () => {
    for (const m of ['GET', 'HEAD', 'OPTIONS', 'PUT', 'DELETE', 'TRACE']) assert.equal(isIdempotent(m), true, m)
    for (const m of ['POST', 'PATCH', 'CONNECT', 'get']) assert.equal(isIdempotent(m), false, m)
  })
})

describe('reasonForError', () => {
  test('recognises undici parser errors without a code as invalid responses', () => {
    const err = new errors.HTTPParserError('Response does not match the HTTP/1.1 protocol', undefined)
    assert.equal(err.code, undefined)
    assert.equal(reasonForError(err), 'upstream_bad_response')
  })

  test('prefers the code and ignores message text', () => {
    assert.equal(reasonForError(Object.assign(new Error('connect ECONNRESET'), { code: 'ECONNREFUSED' })), 'upstream_connect_failed')
    assert.equal(reasonForError(new Error('ECONNREFUSED')), undefined)
  })
})
