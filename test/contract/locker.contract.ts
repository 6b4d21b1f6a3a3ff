/**
 * The Locker contract (src/storage/types.ts). Expiry is real time here (short
 * TTLs), because the shared backends judge it by the server's clock, which a
 * test cannot pin.
 */
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { describe, it } from 'node:test'
import type { Locker } from '../../src/storage/types.js'
import { type MakeStore, rejectsWithCode, withStore } from './key-value-store.contract.js'

const opts = { timeout: 30_000 }

export function runLockerContract(name: string, make: MakeStore<Locker>): void {
  describe(`Locker contract: ${name}`, () => {
    it('gives a free lock at once and refuses it to a second caller until released', opts, () =>
      withStore(make, async (locker) => {
        const first = await locker.acquire('renew/a', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(first)
        assert.equal(first.name, 'renew/a')
        assert.equal(await locker.acquire('renew/a', { ttlMs: 10_000, waitMs: 0 }), undefined)
        const other = await locker.acquire('renew/b', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(other, 'locks of different names are independent')
        assert.equal(await first.release(), true)
        assert.equal(await first.release(), false, 'a second release reports the lock was not ours')
        const second = await locker.acquire('renew/a', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(second)
        assert.ok(second.token > first.token)
        await second.release()
        await other.release()
      }),
    )

    it('gives up after waitMs while another holds the lock', opts, () =>
      withStore(make, async (locker) => {
        const held = await locker.acquire('busy', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(held)
        const started = performance.now()
        assert.equal(await locker.acquire('busy', { ttlMs: 10_000, waitMs: 150 }), undefined)
        const waited = performance.now() - started
        assert.ok(waited >= 140 && waited < 2000, `waited ${waited} ms`)
        await held.release()
      }),
    )

    it('hands the lock to a waiter when the holder releases', opts, () =>
      withStore(make, async (locker) => {
        const held = await locker.acquire('handoff', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(held)
        const waiting = locker.acquire('handoff', { ttlMs: 10_000, waitMs: 5_000 })
        await sleep(50)
        await held.release()
        const next = await waiting
        assert.ok(next)
        assert.ok(next.token > held.token)
        await next.release()
      }),
    )

    it('keeps 10 contending workers mutually exclusive, with increasing fencing tokens', opts, () =>
      withStore(make, async (locker) => {
        let inside = 0
        let maxInside = 0
        const tokens: number[] = []
        const worker = async (): Promise<void> => {
          const lock = await locker.acquire('contended', { ttlMs: 10_000, waitMs: 20_000 })
          assert.ok(lock, 'every worker gets the lock within waitMs')
          inside++
          maxInside = Math.max(maxInside, inside)
          tokens.push(lock.token)
          await sleep(5)
          inside--
          assert.equal(await lock.release(), true)
        }
        await Promise.all(Array.from({ length: 10 }, worker))
        assert.equal(maxInside, 1)
        assert.equal(tokens.length, 10)
        for (let i = 1; i < tokens.length; i++) assert.ok(tokens[i]! > tokens[i - 1]!, `tokens ${tokens.join(',')} increase`)
      }),
    )

    it('lets another caller take an expired lock over; the old holder learns it lost it', opts, () =>
      withStore(make, async (locker) => {
        const stale = await locker.acquire('lease', { ttlMs: 150, waitMs: 0 })
        assert.ok(stale)
        assert.equal(await locker.acquire('lease', { ttlMs: 10_000, waitMs: 0 }), undefined)
        await sleep(300)
        const taker = await locker.acquire('lease', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(taker, 'an expired lock can be taken over')
        assert.ok(taker.token > stale.token, 'the fencing token of a takeover is greater')
        assert.equal(await stale.extend(10_000), false)
        assert.equal(await stale.release(), false)
        // The stale holder's release must not free the new holder's lock.
        assert.equal(await locker.acquire('lease', { ttlMs: 10_000, waitMs: 0 }), undefined)
        assert.equal(await taker.release(), true)
      }),
    )

    it('extends a held lease so that it outlives its first TTL', opts, () =>
      withStore(make, async (locker) => {
        const lock = await locker.acquire('extend', { ttlMs: 200, waitMs: 0 })
        assert.ok(lock)
        await sleep(100)
        assert.equal(await lock.extend(5_000), true)
        await sleep(250)
        assert.equal(await locker.acquire('extend', { ttlMs: 1_000, waitMs: 0 }), undefined)
        assert.equal(await lock.release(), true)
      }),
    )

    it('stops waiting when the signal aborts', opts, () =>
      withStore(make, async (locker) => {
        const held = await locker.acquire('abort', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(held)
        const controller = new AbortController()
        const waiting = locker.acquire('abort', { ttlMs: 10_000, waitMs: 20_000, signal: controller.signal })
        const reason = new Error('shutting down')
        setTimeout(() => controller.abort(reason), 50)
        await assert.rejects(waiting, (err: unknown) => err === reason)
        assert.equal(await held.release(), true)
        const after = await locker.acquire('abort', { ttlMs: 10_000, waitMs: 0 })
        assert.ok(after, 'the aborted waiter holds nothing')
        await after.release()
      }),
    )

    it('refuses unusable options', opts, () =>
      withStore(make, async (locker) => {
        await rejectsWithCode(locker.acquire('x', { ttlMs: 0, waitMs: 0 }), 'invalid_argument')
        await rejectsWithCode(locker.acquire('x', { ttlMs: 1000, waitMs: -1 }), 'invalid_argument')
        await rejectsWithCode(locker.acquire('', { ttlMs: 1000, waitMs: 0 }), 'invalid_key')
      }),
    )
  })
}
