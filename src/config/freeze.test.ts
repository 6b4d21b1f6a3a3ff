import assert from 'node:assert/strict'
import { test } from 'node:test'
import { deepFreeze } from './freeze.js'

test('freezes nested objects and arrays, including shared and cyclic references', () => {
  const shared = { list: [{ n: 1 }] }
  const value: Record<string, unknown> = { a: shared, b: shared }
  value.self = value
  assert.equal(deepFreeze(value), value)
  assert.ok(Object.isFrozen(value))
  assert.ok(Object.isFrozen(shared.list))
  assert.ok(Object.isFrozen(shared.list[0]))
  assert.throws(() => shared.list.push({ n: 2 }), TypeError)
})

test('leaves typed arrays writable instead of throwing', () => {
  const value = { bytes: new Uint8Array([1, 2]) }
  deepFreeze(value)
  assert.ok(Object.isFrozen(value))
  assert.ok(!Object.isFrozen(value.bytes))
})
