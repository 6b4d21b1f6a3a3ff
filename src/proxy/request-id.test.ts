import assert from 'node:assert/strict'
import { createServer, request } from 'node:http'
import type { AddressInfo } from 'node:net'
import { after, before, describe, test } from 'node:test'
import { isSafeRequestId, requestIdFrom } from './request-id.js'

describe('isSafeRequestId', () => {
  for (const ok of ['a', 'abc-123', 'trace:span.1_2', 'x'.repeat(128), '550e8400-e29b-41d4-a716-446655440000']) {
    test(`accepts ${ok.length > 40 ? `${ok.length} chars` : ok}`, () => assert.equal(isSafeRequestId(ok), true))
  }
  for (const bad of ['', 'x'.repeat(129), 'a b', 'a,b', 'a, b', 'a"b', 'a\\b', 'a/b', 'a=b', 'caf\u00e9', '<script>', 'a\tb']) {
    test(`refuses ${JSON.stringify(bad.length > 40 ? `${bad.length} chars` : bad)}`, () => assert.equal(isSafeRequestId(bad), false))
  }
})

describe('requestIdFrom', { timeout: 10_000 }, () => {
  const ids: string[] = []
  const server = createServer((req, res) => {
    ids.push(requestIdFrom(req))
    res.end()
  })
  let port = 0
  before(async () => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as AddressInfo).port
  })
  after(() => new Promise<void>((resolve) => {
    server.closeAllConnections()
    server.close(() => resolve())
  }))

  async function idFor(headers: Record<string, string | string[]>): Promise<string> {
    ids.length = 0
    await new Promise<void>((resolve, reject) => {
      const r = request({ host: '127.0.0.1', port, headers, agent: false }, (res) => {
        res.resume()
        res.on('end', resolve)
      })
      r.on('error', reject)
      r.end()
    })
    return ids[0]!
  }

  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

  test('keeps a safe incoming X-Request-Id', async () => {
    assert.equal(await idFor({ 'X-Request-Id': 'trace-abc.1' }), 'trace-abc.1')
  })
  test('replaces an unsafe one with a fresh UUID', async () => {
    assert.match(await idFor({ 'X-Request-Id': 'a b<script>' }), uuid)
  })
  test('replaces two X-Request-Id lines with a fresh UUID', async () => {
    assert.match(await idFor({ 'X-Request-Id': ['one', 'two'] }), uuid)
  })
  test('makes a different UUID per request when none is sent', async () => {
    const a = await idFor({})
    const b = await idFor({})
    assert.match(a, uuid)
    assert.notEqual(a, b)
  })
})
