/**
 * Runs every *.test.ts under src/, test/ and bench/ with Node's test runner. Node 20
 * does not find .ts files by itself, so the list is built here and passed
 * explicitly. Extra arguments filter by path substring:
 *   node --import tsx test/run.ts tls upstream
 */
import { spawnSync } from 'node:child_process'
import { readdirSync } from 'node:fs'
import { join, relative } from 'node:path'

const root = join(import.meta.dirname, '..')

function findTests(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return entry.name === 'node_modules' ? [] : findTests(path)
    return entry.name.endsWith('.test.ts') ? [relative(root, path)] : []
  })
}

const filters = process.argv.slice(2)
const files = [...findTests(join(root, 'src')), ...findTests(join(root, 'test')), ...findTests(join(root, 'bench'))]
  .filter((f) => filters.length === 0 || filters.some((s) => f.includes(s)))
  .sort()
if (files.length === 0) {
  console.error('no test files found')
  process.exit(1)
}
const result = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=2', ...files], {
  cwd: root,
  stdio: 'inherit',
})
process.exit(result.status ?? 1)
