import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import { TicketKeyRotator } from './ticket-keys.js'

describe('TicketKeyRotator', { timeout: 5_000 }, () => {
  it('applies a fresh 48-byte key at start, then every interval, and stops', async () => {
    const keys: Buffer[] = []
    const rotator = new TicketKeyRotator({ intervalMs: 20, apply: (k) => keys.push(k) })
    rotator.start()
    rotator.start() // no second timer
    assert.equal(keys.length, 1)
    await sleep(110)
    rotator.stop()
    const count = keys.length
    assert.ok(count >= 3 && count <= 7, `rotated ${count} times`)
    assert.ok(keys.every((k) => k.length === 48))
    assert.equal(new Set(keys.map((k) => k.toString('hex'))).size, keys.length)
    await sleep(60)
    assert.equal(keys.length, count)
  })

  it('refuses a non-positive interval', () => {
    assert.throws(() => new TicketKeyRotator({ intervalMs: 0, apply: () => {} }), RangeError)
  })
})
