import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Pool } from 'undici'
import { createBalancer } from './balancer.js'
import { parseTargetUrl, Target } from './target.js'

const pools: Pool[] = []
after(async () => {
  await Promise.all(pools.map((p) => p.close()))
})

function targets(weights: readonly number[], maxInflight = 100): Target[] {
  return weights.map((w, i) => {
    const address = parseTargetUrl(`http://127.0.0.1:${1000 + i}`)
    const pool = new Pool(address.origin)
    pools.push(pool)
    return new Target(i, address, w, '127.0.0.1', pool, maxInflight)
  })
}

function names(ts: readonly Target[], picks: number, avoid?: Target[]): string {
  const b = createBalancer('round_robin', ts)
  let out = ''
  for (let i = 0; i < picks; i++) {
    const t = b.pick(avoid)
    out += t === undefined ? '-' : 'abcdefgh'[t.index]
  }
  return out
}

describe('round_robin', () => {
  test('spreads weights 5:1:1 smoothly as nginx does (a a b a c a a)', () => {
    assert.equal(names(targets([5, 1, 1]), 14), 'aabacaaaabacaa')
  })

  test('equal weights alternate', () => {
    assert.equal(names(targets([1, 1, 1]), 6), 'abcabc')
  })

  test('skips an ejected target and one failing probes', () => {
    const ts = targets([1, 1, 1])
    ts[1]!.isEjected = true
    ts[2]!.isProbeHealthy = false
    assert.equal(names(ts, 4), 'aaaa')
  })

  test('skips a full target (inflight at its limit)', () => {
    const ts = targets([1, 1], 2)
    ts[0]!.inflight = 2
    assert.equal(names(ts, 3), 'bbb')
  })

  test('returns undefined when no target is available', () => {
    const ts = targets([1, 1])
    for (const t of ts) t.isEjected = true
    assert.equal(names(ts, 2), '--')
  })

  test('avoids targets already tried, unless nothing else is left', () => {
    const ts = targets([1, 1, 1])
    assert.equal(names(ts, 4, [ts[0]!]), 'bcbc')
    const two = targets([1, 1])
    two[1]!.isEjected = true
    assert.equal(names(two, 2, [two[0]!]), 'aa')
  })
})

describe('least_request', () => {
  test('prefers the target with the fewest requests in flight', () => {
    const ts = targets([1, 1, 1])
    ts[0]!.inflight = 3
    ts[1]!.inflight = 1
    ts[2]!.inflight = 2
    const b = createBalancer('least_request', ts)
    for (let i = 0; i < 5; i++) assert.equal(b.pick(undefined)?.index, 1)
  })

  test('rotates among idle targets instead of always taking the first', () => {
    const ts = targets([1, 1, 1])
    const b = createBalancer('least_request', ts)
    const seen = new Set<number>()
    for (let i = 0; i < 3; i++) seen.add(b.pick(undefined)!.index)
    assert.deepEqual([...seen].sort(), [0, 1, 2])
  })

  test('scales load by weight: weight 3 with 2 in flight beats weight 1 with 1', () => {
    const ts = targets([3, 1])
    ts[0]!.inflight = 2 // (2+1)/3 = 1
    ts[1]!.inflight = 1 // (1+1)/1 = 2
    const b = createBalancer('least_request', ts)
    assert.equal(b.pick(undefined)?.index, 0)
  })

  test('skips unavailable targets even when they are idle', () => {
    const ts = targets([1, 1])
    ts[0]!.isEjected = true
    ts[1]!.inflight = 50
    const b = createBalancer('least_request', ts)
    assert.equal(b.pick(undefined)?.index, 1)
  })
})
