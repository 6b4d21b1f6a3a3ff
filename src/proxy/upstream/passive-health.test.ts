import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { Pool } from 'undici'
import { FixedClock } from '../../shared/clock.js'
import { silentLogger } from '../../shared/log.js'
import { PassiveHealth } from './passive-health.js'
import { parseTargetUrl, Target } from './target.js'

const pools: Pool[] = []
after(async () => {
  await Promise.all(pools.map((p) => p.close()))
})

function target(): Target {
  const address = parseTargetUrl('http://127.0.0.1:9')
  const pool = new Pool(address.origin)
  pools.push(pool)
  return new Target(0, address, 1, '127.0.0.1', pool, 10)
}

describe('PassiveHealth', () => {
  test('ejects after N consecutive faults and restores when the cool-off has passed', () => {
    const clock = new FixedClock(1_000_000)
    const health = new PassiveHealth({ consecutiveFailures: 3, ejectFor: 30_000 }, clock, silentLogger())
    const t = target()
    health.recordFailure(t, 'upstream_reset')
    health.recordFailure(t, 'upstream_timeout')
    assert.equal(t.isAvailable(), true)
    health.recordFailure(t, 502)
    assert.equal(t.isAvailable(), false)
    assert.equal(health.ejectedCount, 1)

    clock.advance(29_999)
    health.restoreExpired([t])
    assert.equal(t.isAvailable(), false, 'still inside the cool-off')
    clock.advance(1)
    health.restoreExpired([t])
    assert.equal(t.isAvailable(), true)
    assert.equal(health.ejectedCount, 0)
  })

  test('a success ends the streak', () => {
    const health = new PassiveHealth({ consecutiveFailures: 2, ejectFor: 1000 }, new FixedClock(0), silentLogger())
    const t = target()
    health.recordFailure(t, 'upstream_reset')
    health.recordSuccess(t)
    health.recordFailure(t, 'upstream_reset')
    assert.equal(t.isEjected, false)
    health.recordFailure(t, 'upstream_reset')
    assert.equal(t.isEjected, true)
  })

  test('a restored target needs a full new streak to be ejected again', () => {
    const clock = new FixedClock(0)
    const health = new PassiveHealth({ consecutiveFailures: 2, ejectFor: 10 }, clock, silentLogger())
    const t = target()
    health.recordFailure(t, 'upstream_reset')
    health.recordFailure(t, 'upstream_reset')
    // Faults of requests still in flight while ejected do not count.
    health.recordFailure(t, 'upstream_reset')
    clock.advance(10)
    health.restoreExpired([t])
    health.recordFailure(t, 'upstream_reset')
    assert.equal(t.isEjected, false)
  })
})
