import assert from 'node:assert/strict'
import { test } from 'node:test'
import { idleConnectionCount } from './topology.js'

test('the idle scenario opens 10,000 connections when descriptors allow, fewer in hundreds when not', () => {
  assert.equal(idleConnectionCount(1_048_576), 10_000)
  assert.equal(idleConnectionCount(65_536), 10_000)
  assert.equal(idleConnectionCount(20_000), 9_500)
  assert.equal(idleConnectionCount(4_096), 1_500)
})
