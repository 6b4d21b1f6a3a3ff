/**
 * Config golden files, as in Caddy's adapter tests. Each file in
 * test/vectors/config/ is YAML, a line `----------`, then what loading it
 * gives: the normalised config as JSON (defaults applied, durations in ms,
 * sizes in bytes), or one issue per line as `file:line:col path: message`.
 *
 * `UPDATE_GOLDEN=1 node --import tsx --test test/config-golden.test.ts`
 * rewrites the part after the separator; review the diff before committing.
 */
import assert from 'node:assert/strict'
import { readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { formatIssue } from '../src/config/issues.js'
import { loadConfig } from '../src/config/load.js'

const dir = join(import.meta.dirname, 'vectors', 'config')
const separator = '\n----------\n'
const isUpdate = process.env.UPDATE_GOLDEN === '1'
/** The environment every vector sees; `{ env: KEY_PASSPHRASE }` resolves, anything else is unset. */
const env = { KEY_PASSPHRASE: 'correct horse' }

function render(yaml: string, file: string): string {
  const result = loadConfig(yaml, file, { source: { baseDir: dir, env } })
  const text = result.ok ? JSON.stringify(result.config, null, 2) : result.issues.map(formatIssue).join('\n')
  // Messages about files name the resolved path; keep the vectors machine-independent.
  return `${text.split(dir).join('<vectors>')}\n`
}

const files = readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort()

test('config vectors exist', () => {
  assert.ok(files.length >= 12, `expected at least 12 vectors in ${dir}, found ${files.length}`)
})

for (const file of files) {
  test(`config vector ${file}`, { timeout: 10_000 }, () => {
    const path = join(dir, file)
    const content = readFileSync(path, 'utf8')
    const at = content.indexOf(separator)
    const yaml = at === -1 ? (content.endsWith('\n') ? content : `${content}\n`) : content.slice(0, at + 1)
    const expected = at === -1 ? undefined : content.slice(at + separator.length)
    const actual = render(yaml, file)
    if (isUpdate) {
      writeFileSync(path, `${yaml}${separator.slice(1)}${actual}`)
      return
    }
    assert.ok(expected !== undefined, `${file} has no "----------" line; run with UPDATE_GOLDEN=1 to create it`)
    assert.equal(actual, expected, `${file}: output differs from the golden file (UPDATE_GOLDEN=1 rewrites it)`)
  })
}

test('a valid vector and an invalid one both exist, so both branches are exercised', () => {
  const outcomes = files.map((f) => {
    const content = readFileSync(join(dir, f), 'utf8')
    return content.slice(content.indexOf(separator) + separator.length).startsWith('{')
  })
  assert.ok(outcomes.includes(true) && outcomes.includes(false))
})
