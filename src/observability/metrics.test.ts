import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Counter, Gauge } from 'prom-client'
import { createMetricsRegistry, metric } from './metrics.js'
import { startMetricsServer } from './metrics-server.js'

test('metric() creates a metric once and returns the same one afterwards', () => {
  const registry = createMetricsRegistry()
  const make = () => new Gauge({ name: 'portcullis_test_gauge', help: 'test', registers: [registry] })
  const a = metric(registry, 'portcullis_test_gauge', make, Gauge)
  const b = metric(registry, 'portcullis_test_gauge', make, Gauge)
  assert.equal(a, b)
  assert.throws(() => metric(registry, 'portcullis_test_gauge', () => new Counter({ name: 'x', help: 'x', registers: [] }), Counter), /another type/)
  assert.throws(() => metric(registry, 'portcullis_unregistered', () => new Gauge({ name: 'portcullis_unregistered', help: 'x', registers: [] }), Gauge), /not registered/)
})

test('the endpoint serves the text format at its path and nothing else', async () => {
  const registry = createMetricsRegistry()
  metric(registry, 'portcullis_test_value', () => new Gauge({ name: 'portcullis_test_value', help: 'a test value', registers: [registry] }), Gauge).set(42)
  const server = await startMetricsServer(registry, { host: '127.0.0.1', port: 0, path: '/metrics' })
  try {
    const base = `http://127.0.0.1:${server.port}`
    const ok = await fetch(`${base}/metrics`)
    assert.equal(ok.status, 200)
    assert.match(ok.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/)
    const text = await ok.text()
    assert.match(text, /^portcullis_test_value 42$/m)
    assert.match(text, /^process_resident_memory_bytes \d+/m, 'default process metrics are included')
    assert.equal((await fetch(`${base}/other`)).status, 404)
    const post = await fetch(`${base}/metrics`, { method: 'POST' })
    assert.equal(post.status, 405)
    assert.equal(post.headers.get('allow'), 'GET, HEAD')
  } finally {
    await server.close()
  }
})
