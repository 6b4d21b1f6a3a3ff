import assert from 'node:assert/strict'
import { test } from 'node:test'
import { MemoryKeyValueStore } from '../storage/memory.js'
import { crlNumberKey, nextCrlNumber } from './crl-number.js'

test('CRL numbers start at 1 and increase by one per reservation', { timeout: 5000 }, async () => {
  const kv = new MemoryKeyValueStore()
  assert.equal(await nextCrlNumber(kv), 1n)
  assert.equal(await nextCrlNumber(kv), 2n)
  assert.equal((await kv.get(crlNumberKey))?.value.toString(), '2')
})

test('concurrent reservations never hand out the same number', { timeout: 5000 }, async () => {
  const kv = new MemoryKeyValueStore()
  const numbers = await Promise.all(Array.from({ length: 10 }, () => nextCrlNumber(kv)))
  assert.deepEqual([...numbers].sort((a, b) => (a < b ? -1 : 1)), Array.from({ length: 10 }, (_, i) => BigInt(i + 1)))
})

test('continues past 2^53 without losing precision', { timeout: 5000 }, async () => {
  const kv = new MemoryKeyValueStore()
  await kv.put(crlNumberKey, Buffer.from('9007199254740993'))
  assert.equal(await nextCrlNumber(kv), 9007199254740994n)
})

test('refuses a stored value that is not a CRL number instead of restarting at 1', { timeout: 5000 }, async () => {
  const kv = new MemoryKeyValueStore()
  for (const bad of ['-1', 'abc', '01', '']) {
    await kv.put(crlNumberKey, Buffer.from(bad))
    await assert.rejects(nextCrlNumber(kv), /not a CRL number/)
  }
})
