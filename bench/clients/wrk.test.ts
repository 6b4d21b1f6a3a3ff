import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseH2loadLog } from './h2load.js'
import { parseWrkOutput } from './wrk.js'

test('wrk output: the report line, errors summed, and the shim counters', () => {
  const stdout = 'Running 1s test\nBENCH_JSON {"requests":120,"durationUs":1000000,"bytes":9,"errors":{"connect":1,"read":0,"write":0,"status":2,"timeout":0},"latencyUs":{"p50":10,"p99":90,"p999":99,"max":120}}\n'
  const r = parseWrkOutput(stdout, 'BENCH_TLS handshakes=120 resumed=7\n')
  assert.deepEqual(r, { requests: 120, durationUs: 1_000_000, errors: 3, latencyUs: { p50: 10, p99: 90, p999: 99 }, handshakes: 120, resumed: 7 })
})

test('wrk output without the report line is an error naming what wrk printed', () => {
  assert.throws(() => parseWrkOutput('unable to connect to 127.0.0.1:1 Connection refused', ''), /wrk printed no report:\nunable to connect/)
})

test('h2load log: percentiles of the 200s, everything else an error', () => {
  const lines = Array.from({ length: 100 }, (_, i) => `1700000000${i}\t200\t${(i + 1) * 10}`)
  lines.push('17000000001\t503\t5', '17000000002\t-1\t0')
  const r = parseH2loadLog(`${lines.join('\n')}\n`, 2)
  assert.equal(r.requests, 100)
  assert.equal(r.errors, 2)
  assert.equal(r.durationUs, 2_000_000)
  assert.deepEqual(r.latencyUs, { p50: 500, p99: 990, p999: 1000 })
})
