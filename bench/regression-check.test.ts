import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { Figure } from './figures.js'
import { findRegressions } from './regression-check.js'

function figure(key: string, isHigherBetter: boolean, ratios: Figure['ratios']): Figure {
  return { key, scenario: 's', label: key, unit: 'u', isHigherBetter, samples: {}, summary: {}, ratios }
}

test('a throughput ratio more than 15% below the baseline is a regression', () => {
  const found = findRegressions([figure('rps', true, { nginx: 0.5 })], [figure('rps', true, { nginx: 0.42 })])
  assert.equal(found.length, 1)
  assert.equal(found[0]!.base, 'nginx')
  assert.ok(Math.abs(found[0]!.loss - 0.16) < 1e-9)
})

test('a throughput ratio within 15% of the baseline, or better, passes', () => {
  assert.deepEqual(findRegressions([figure('rps', true, { nginx: 0.5 })], [figure('rps', true, { nginx: 0.43 })]), [])
  assert.deepEqual(findRegressions([figure('rps', true, { nginx: 0.5 })], [figure('rps', true, { nginx: 0.9 })]), [])
})

test('for lower-is-better figures a rising ratio is the regression', () => {
  // CPU per request: Portcullis/naive 1.0 -> 1.25 is 20% worse (goodness 1 -> 0.8).
  const worse = findRegressions([figure('cpu', false, { naive: 1.0 })], [figure('cpu', false, { naive: 1.25 })])
  assert.equal(worse.length, 1)
  assert.ok(Math.abs(worse[0]!.loss - 0.2) < 1e-9)
  assert.deepEqual(findRegressions([figure('cpu', false, { naive: 1.0 })], [figure('cpu', false, { naive: 0.5 })]), [])
})

test('each ratio column is checked on its own', () => {
  const found = findRegressions(
    [figure('rps', true, { nginx: 0.5, haproxy: 0.4, naive: 1.2 })],
    [figure('rps', true, { nginx: 0.5, haproxy: 0.2, naive: 0.6 })],
  )
  assert.deepEqual(found.map((r) => r.base), ['haproxy', 'naive'])
})

test('figures or ratios missing on either side are not compared', () => {
  assert.deepEqual(findRegressions([figure('old', true, { nginx: 1 })], [figure('new', true, { nginx: 0.1 })]), [])
  assert.deepEqual(findRegressions([figure('rps', true, {})], [figure('rps', true, { nginx: 0.1 })]), [])
  assert.deepEqual(findRegressions([figure('rps', true, { nginx: 0 })], [figure('rps', true, { nginx: 0.1 })]), [])
})
