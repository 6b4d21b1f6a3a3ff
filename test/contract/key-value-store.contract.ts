/**
 * The KeyValueStore contract (src/storage/types.ts), run by every backend from
 * a three-line file. Each test opens a fresh store and closes it, so backends
 * that share a server are isolated per test.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type KeyValueStore, MAX_KEY_BYTES, MAX_VALUE_BYTES, StorageLimitError } from '../../src/storage/types.js'

/** What a backend's test file hands the suites: a fresh store and how to close it. */
export type MakeStore<T> = () => Promise<{ readonly store: T; close(): Promise<void> }>

/** Opens a store, runs `body`, closes the store whatever happens. */
export async function withStore<T>(make: MakeStore<T>, body: (store: T) => Promise<void>): Promise<void> {
  const { store, close } = await make()
  try {
    await body(store)
  } finally {
    await close()
  }
}

/** Asserts a rejection with a StorageLimitError of the given code. */
export async function rejectsWithCode(promise: Promise<unknown>, code: string): Promise<void> {
  await assert.rejects(promise, (err: unknown) => err instanceof StorageLimitError && err.code === code)
}

const opts = { timeout: 30_000 }

export function runKeyValueStoreContract(name: string, make: MakeStore<KeyValueStore>): void {
  describe(`KeyValueStore contract: ${name}`, () => {
    it('returns undefined for a missing key', opts, () =>
      withStore(make, async (kv) => {
        assert.equal(await kv.get('missing/key'), undefined)
      }),
    )

    it('reads back the exact bytes written, with the version put returned', opts, () =>
      withStore(make, async (kv) => {
        const value = Buffer.from([0, 1, 2, 255, 0, 0x80])
        const put = await kv.put('a/b', value)
        assert.ok('version' in put)
        const got = await kv.get('a/b')
        assert.ok(got)
        assert.deepEqual(got.value, value)
        assert.equal(got.version, put.version)
        const empty = await kv.put('empty', Buffer.alloc(0))
        assert.ok('version' in empty)
        assert.equal((await kv.get('empty'))?.value.length, 0)
      }),
    )

    it('increases the version on every write, even across delete and re-create', opts, () =>
      withStore(make, async (kv) => {
        const v1 = await kv.put('k', Buffer.from('1'))
        const v2 = await kv.put('k', Buffer.from('2'))
        assert.ok('version' in v1 && 'version' in v2)
        assert.ok(v2.version > v1.version)
        assert.deepEqual(await kv.delete('k'), { deleted: true })
        const v3 = await kv.put('k', Buffer.from('3'), { ifVersion: 'absent' })
        assert.ok('version' in v3)
        assert.ok(v3.version > v2.version, 'a re-created key must not reuse an old version (ABA)')
        assert.deepEqual(await kv.put('k', Buffer.from('x'), { ifVersion: v1.version }), { conflict: true })
        assert.deepEqual(await kv.put('k', Buffer.from('x'), { ifVersion: v2.version }), { conflict: true })
      }),
    )

    it("refuses ifVersion 'absent' when the key exists and a stale version", opts, () =>
      withStore(make, async (kv) => {
        const created = await kv.put('c', Buffer.from('a'), { ifVersion: 'absent' })
        assert.ok('version' in created)
        assert.deepEqual(await kv.put('c', Buffer.from('b'), { ifVersion: 'absent' }), { conflict: true })
        assert.deepEqual(await kv.put('c', Buffer.from('b'), { ifVersion: created.version + 1000 }), { conflict: true })
        assert.deepEqual(await kv.put('never', Buffer.from('b'), { ifVersion: 1 }), { conflict: true })
        assert.equal(await kv.get('never'), undefined)
        assert.deepEqual((await kv.get('c'))?.value, Buffer.from('a'))
        const updated = await kv.put('c', Buffer.from('b'), { ifVersion: created.version })
        assert.ok('version' in updated)
        assert.deepEqual((await kv.get('c'))?.value, Buffer.from('b'))
      }),
    )

    it('loses no update when 20 writers increment one counter with CAS retries', opts, () =>
      withStore(make, async (kv) => {
        let conflicts = 0
        const increment = async (): Promise<void> => {
          for (;;) {
            const current = await kv.get('counter')
            const next = Buffer.from(String(Number(current?.value.toString() ?? '0') + 1))
            const result = await kv.put('counter', next, { ifVersion: current?.version ?? 'absent' })
            if ('version' in result) return
            conflicts++
            await new Promise((r) => setImmediate(r))
          }
        }
        await Promise.all(Array.from({ length: 20 }, increment))
        assert.equal((await kv.get('counter'))?.value.toString(), '20')
        // Not asserted: how many conflicts happened (scheduling decides); only that none was lost.
        assert.ok(conflicts >= 0)
      }),
    )

    it('deletes idempotently, and conditionally only at the named version', opts, () =>
      withStore(make, async (kv) => {
        assert.deepEqual(await kv.delete('nothing'), { deleted: false })
        const put = await kv.put('d', Buffer.from('x'))
        assert.ok('version' in put)
        assert.deepEqual(await kv.delete('d', { ifVersion: put.version + 1 }), { conflict: true })
        assert.ok(await kv.get('d'))
        assert.deepEqual(await kv.delete('d', { ifVersion: put.version }), { deleted: true })
        assert.equal(await kv.get('d'), undefined)
        assert.deepEqual(await kv.delete('d', { ifVersion: put.version }), { conflict: true })
      }),
    )

    it('lists keys under a prefix in UTF-8 byte order, not UTF-16 order', opts, () =>
      withStore(make, async (kv) => {
        // '\uff01' < '\u{1f600}' in UTF-8 bytes (ef.. < f0..) but not in UTF-16 code units.
        const keys = ['p/b', 'p/a', 'p/ab', 'p/\u{1f600}', 'p/\uff01', 'p/é', 'p/Z', 'q/a', 'p', 'o/z', 'p%/x', 'p_']
        for (const key of keys) await kv.put(key, Buffer.from(key))
        const listed = await kv.list('p/')
        assert.deepEqual(
          listed.map((e) => e.key),
          ['p/Z', 'p/a', 'p/ab', 'p/b', 'p/é', 'p/\uff01', 'p/\u{1f600}'],
        )
        for (const entry of listed) assert.equal(entry.version, (await kv.get(entry.key))?.version)
        assert.deepEqual(
          (await kv.list('')).map((e) => e.key),
          [...keys].sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b))),
        )
        // SQL wildcards in a prefix are literal.
        assert.deepEqual((await kv.list('p%')).map((e) => e.key), ['p%/x'])
        assert.deepEqual((await kv.list('p_')).map((e) => e.key), ['p_'])
        assert.deepEqual(await kv.list('none/'), [])
      }),
    )

    it('pages a listing with limit and after, each key exactly once', opts, () =>
      withStore(make, async (kv) => {
        const keys = Array.from({ length: 25 }, (_, i) => `page/${String(i).padStart(3, '0')}`)
        for (const key of [...keys].reverse()) await kv.put(key, Buffer.from('v'))
        await kv.put('pagf', Buffer.from('outside'))
        const seen: string[] = []
        let after: string | undefined
        for (let pages = 0; pages < 10; pages++) {
          const page = await kv.list('page/', { limit: 7, ...(after !== undefined ? { after } : {}) })
          assert.ok(page.length <= 7)
          seen.push(...page.map((e) => e.key))
          if (page.length < 7) break
          after = page.at(-1)?.key
        }
        assert.deepEqual(seen, keys)
        assert.deepEqual(
          (await kv.list('page/', { after: 'page/022' })).map((e) => e.key),
          ['page/023', 'page/024'],
        )
        await rejectsWithCode(kv.list('page/', { limit: 0 }), 'invalid_argument')
        await rejectsWithCode(kv.list('page/', { limit: 1001 }), 'invalid_argument')
      }),
    )

    it('enforces the key and value limits', opts, () =>
      withStore(make, async (kv) => {
        await rejectsWithCode(kv.put('', Buffer.from('x')), 'invalid_key')
        await rejectsWithCode(kv.get('\ud800'), 'invalid_key')
        const longest = 'é'.repeat(MAX_KEY_BYTES / 2) // 512 bytes
        assert.ok('version' in (await kv.put(longest, Buffer.from('x'))))
        assert.deepEqual((await kv.get(longest))?.value, Buffer.from('x'))
        await rejectsWithCode(kv.put(`${longest}a`, Buffer.from('x')), 'invalid_key')
        await rejectsWithCode(kv.put('big', Buffer.alloc(MAX_VALUE_BYTES + 1)), 'value_too_large')
        await rejectsWithCode(kv.put('v', Buffer.from('x'), { ifVersion: 0 }), 'invalid_argument')
        assert.equal(await kv.get('big'), undefined)
      }),
    )

    it('stores a value of exactly 16 MiB', { timeout: 60_000 }, () =>
      withStore(make, async (kv) => {
        const value = Buffer.alloc(MAX_VALUE_BYTES, 0xab)
        value[0] = 1
        value[MAX_VALUE_BYTES - 1] = 2
        assert.ok('version' in (await kv.put('max', value)))
        assert.ok((await kv.get('max'))?.value.equals(value))
      }),
    )
  })
}
