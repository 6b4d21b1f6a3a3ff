import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { MAX_WORKERS, parseWorkerCount } from './worker-count.js'

describe('parseWorkerCount', () => {
  it('takes a count, or "auto" as the number of usable cores', () => {
    assert.equal(parseWorkerCount('1', 8), 1)
    assert.equal(parseWorkerCount('2', 8), 2)
    assert.equal(parseWorkerCount('auto', 8), 8)
    assert.equal(parseWorkerCount('auto', 0), 1)
  })

  it('refuses zero, negatives, fractions, junk and absurd counts, naming the flag', () => {
    for (const text of ['0', '-1', '1.5', '2x', '', ' 2', 'AUTO', String(MAX_WORKERS + 1)]) {
      assert.throws(() => parseWorkerCount(text, 4), /^Error: --workers: expected a number from 1 to 256 or "auto"/, text)
    }
  })
})
