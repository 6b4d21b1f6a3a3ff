import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { FixedClock } from '../shared/clock.js'
import { defaultRestartPolicy, RestartGuard } from './restart-policy.js'

describe('RestartGuard', () => {
  const policy = { windowMs: 60_000, maxDeaths: 5, baseDelayMs: 100, maxDelayMs: 1_000 }

  it('replaces after a delay that doubles with each recent death, up to the maximum', () => {
    const guard = new RestartGuard({ ...policy, maxDeaths: 10 }, new FixedClock(0))
    const delays = Array.from({ length: 6 }, () => guard.onDeath()).map((d) => (d.action === 'replace' ? d.delayMs : -1))
    assert.deepEqual(delays, [100, 200, 400, 800, 1_000, 1_000])
  })

  it('gives up at the fifth death within the window', () => {
    const guard = new RestartGuard(policy, new FixedClock(0))
    for (let i = 0; i < 4; i++) assert.equal(guard.onDeath().action, 'replace')
    assert.deepEqual(guard.onDeath(), { action: 'give_up', deaths: 5, windowMs: 60_000 })
  })

  it('forgets deaths older than the window: a death a minute is replaced forever, at the base delay', () => {
    const clock = new FixedClock(0)
    const guard = new RestartGuard(policy, clock)
    for (let i = 0; i < 20; i++) {
      assert.deepEqual(guard.onDeath(), { action: 'replace', delayMs: 100 })
      clock.advance(60_000)
    }
  })

  it('counts deaths of all workers together, and allows two per worker on large machines', () => {
    assert.equal(defaultRestartPolicy(2).maxDeaths, 5)
    assert.equal(defaultRestartPolicy(16).maxDeaths, 32)
  })
})
