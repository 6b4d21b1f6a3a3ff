import assert from 'node:assert/strict'
import { test } from 'node:test'
import { parseBenchFlags, quickScenarios, scenarioNames } from './flags.js'

test('defaults: every scenario, 3 runs, no check', () => {
  assert.deepEqual(parseBenchFlags([]), { isQuick: false, isCheck: false, runs: 3, scenarios: scenarioNames, note: undefined })
})

test('--quick picks the quick subset; --scenario picks in run order', () => {
  assert.deepEqual(parseBenchFlags(['--quick']).scenarios, quickScenarios)
  assert.deepEqual(parseBenchFlags(['--scenario', 'handshakes', '--scenario', 'keepalive-h1']).scenarios, ['keepalive-h1', 'handshakes'])
  assert.deepEqual(parseBenchFlags(['--quick', '--scenario', 'streaming']).scenarios, ['streaming'])
})

test('--check, --runs and --note are read', () => {
  const flags = parseBenchFlags(['--check', '--runs', '5', '--note', 'identity parsed once per connection'])
  assert.equal(flags.isCheck, true)
  assert.equal(flags.runs, 5)
  assert.equal(flags.note, 'identity parsed once per connection')
})

test('unknown flags, scenarios and bad run counts are refused with the usage', () => {
  assert.throws(() => parseBenchFlags(['--fast']), /usage: npm run bench/)
  assert.throws(() => parseBenchFlags(['--scenario', 'tls']), /unknown "tls"/)
  assert.throws(() => parseBenchFlags(['--runs', '0']), /--runs: expected 1-20/)
  assert.throws(() => parseBenchFlags(['--runs', 'two']), /--runs/)
})
