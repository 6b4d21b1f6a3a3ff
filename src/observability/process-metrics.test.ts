import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Counter, Gauge } from 'prom-client'
import { createMetricsRegistry, metric } from './metrics.js'
import { mergeProcessMetrics } from './process-metrics.js'

test('each process keeps its own series under a process label, default metrics included', async () => {
  const parts = await Promise.all(
    [3, 5].map(async (n, i) => {
      const registry = createMetricsRegistry()
      metric(registry, 'portcullis_test_checks_total', () => new Counter({ name: 'portcullis_test_checks_total', help: 'checks', labelNames: ['result'], registers: [registry] }), Counter).inc({ result: 'good' }, n)
      metric(registry, 'portcullis_test_next_update_seconds', () => new Gauge({ name: 'portcullis_test_next_update_seconds', help: 'gauge', registers: [registry] }), Gauge).set(n * 10)
      return { process: i === 0 ? 'primary' : 'worker-1', metrics: await registry.getMetricsAsJSON() }
    }),
  )
  const text = await mergeProcessMetrics(parts)
  assert.match(text, /^portcullis_test_checks_total\{result="good",process="primary"\} 3$/m)
  assert.match(text, /^portcullis_test_checks_total\{result="good",process="worker-1"\} 5$/m)
  assert.match(text, /^portcullis_test_next_update_seconds\{process="primary"\} 30$/m, 'a gauge is not summed')
  assert.match(text, /^portcullis_test_next_update_seconds\{process="worker-1"\} 50$/m)
  assert.equal(text.match(/^# TYPE portcullis_test_checks_total counter$/gm)?.length, 1, 'one family per metric name')
  assert.match(text, /^process_resident_memory_bytes\{process="worker-1"\} \d+$/m)
})
