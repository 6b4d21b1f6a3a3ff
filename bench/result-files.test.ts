import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { latestBaseline, resultFileName } from './result-files.js'

test('result files are named by UTC start time and short sha, so names sort by time', () => {
  assert.equal(resultFileName(new Date('2025-11-23T14:30:05.123Z'), 'ea5d749'), '2025-11-23T143005Z-ea5d749.json')
  const a = resultFileName(new Date('2025-01-02T03:04:05Z'), 'fff')
  const b = resultFileName(new Date('2025-01-02T13:04:05Z'), 'aaa')
  assert.ok(a < b)
})

function write(dir: string, name: string, body: unknown): void {
  writeFileSync(join(dir, name), typeof body === 'string' ? body : JSON.stringify(body))
}

test('the baseline is the newest readable result of the same mode', () => {
  const dir = mkdtempSync(join(tmpdir(), 'bench-results-'))
  write(dir, '2025-01-01T000000Z-aaaaaaa.json', { version: 1, mode: 'full', figures: [] })
  write(dir, '2025-01-02T000000Z-bbbbbbb.json', { version: 1, mode: 'quick', figures: [] })
  write(dir, '2025-01-03T000000Z-ccccccc.json', { version: 1, mode: 'full', figures: [] })
  write(dir, '2025-01-04T000000Z-ddddddd.json', '{"version":1,"mode":"full"') // half-written
  write(dir, '2025-01-05T000000Z-eeeeeee.json', { version: 2, mode: 'full', figures: [] }) // another shape
  write(dir, 'notes.json', { version: 1, mode: 'full', figures: [] }) // not a result name
  assert.equal(latestBaseline(dir, 'full')?.file, '2025-01-03T000000Z-ccccccc.json')
  assert.equal(latestBaseline(dir, 'quick')?.file, '2025-01-02T000000Z-bbbbbbb.json')
})

test('no results directory or no result of the mode: no baseline', () => {
  assert.equal(latestBaseline(join(tmpdir(), 'does-not-exist-bench'), 'full'), undefined)
  const dir = mkdtempSync(join(tmpdir(), 'bench-results-'))
  write(dir, '2025-01-01T000000Z-aaaaaaa.json', { version: 1, mode: 'quick', figures: [] })
  assert.equal(latestBaseline(dir, 'full'), undefined)
})
