import assert from 'node:assert/strict'
import { test } from 'node:test'
import { FigureSet } from './figures.js'
import { formatNumber, renderTable } from './table.js'

test('numbers are shown with about 3 significant digits', () => {
  assert.equal(formatNumber(24512.4), '24512')
  assert.equal(formatNumber(36.04), '36.0')
  assert.equal(formatNumber(1.2345), '1.23')
  assert.equal(formatNumber(0.41234), '0.412')
  assert.equal(formatNumber(Number.NaN), '–')
})

test('one row per figure: median (min–max) per proxy, then the three ratios', () => {
  const set = new FigureSet()
  const spec = { key: 'k', scenario: 's', label: 'keep-alive req/s', unit: 'req/s', isHigherBetter: true }
  for (const v of [9000, 10000, 11000]) set.add(spec, 'portcullis', v)
  for (const v of [20000, 20000, 20000]) set.add(spec, 'nginx', v)
  const lines = renderTable(set.figures()).split('\n')
  assert.equal(lines.length, 3)
  assert.match(lines[0]!, /\| figure .*\| Portcullis .*\| cluster .*\| nginx .*\| HAProxy .*\| naive .*\| P\/nginx .*\| P\/HAProxy .*\| P\/naive/)
  const cells = lines[2]!.split('|').map((c) => c.trim())
  assert.deepEqual(cells.slice(1, 11), ['keep-alive req/s', 'req/s', '10000 (9000–11000)', '–', '20000 (20000–20000)', '–', '–', '0.500', '–', '–'])
})
