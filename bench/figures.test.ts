import assert from 'node:assert/strict'
import { test } from 'node:test'
import { FigureSet } from './figures.js'

const rps = { key: 'k.rps', scenario: 'k', label: 'req/s', unit: 'req/s', isHigherBetter: true }

test('figures summarise samples per proxy and divide Portcullis medians by the others', () => {
  const set = new FigureSet()
  for (const v of [900, 1000, 1100]) set.add(rps, 'portcullis', v)
  for (const v of [2000, 1900, 2100]) set.add(rps, 'nginx', v)
  for (const v of [800, 800, 800]) set.add(rps, 'naive', v)
  const [figure] = set.figures()
  assert.equal(figure!.summary.portcullis!.median, 1000)
  assert.equal(figure!.ratios.nginx, 0.5)
  assert.equal(figure!.ratios.naive, 1.25)
  assert.equal(figure!.ratios.haproxy, undefined, 'no HAProxy samples, no ratio')
  assert.deepEqual(figure!.samples.nginx, [2000, 1900, 2100])
})

test('a figure whose runs all failed has no summary and no ratio', () => {
  const set = new FigureSet()
  set.add(rps, 'portcullis', Number.NaN)
  set.add(rps, 'nginx', 100)
  const [figure] = set.figures()
  assert.equal(figure!.summary.portcullis, undefined)
  assert.deepEqual(figure!.ratios, {})
})

test('figures marked without ratios get none', () => {
  const set = new FigureSet()
  const growth = { key: 'g', scenario: 's', label: 'RSS growth', unit: 'MB', isHigherBetter: false, hasRatios: false }
  set.add(growth, 'portcullis', 0.3)
  set.add(growth, 'haproxy', 0.008)
  assert.deepEqual(set.figures()[0]!.ratios, {})
})
