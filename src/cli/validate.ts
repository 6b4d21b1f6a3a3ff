/**
 * `portcullis validate FILE`: load, check and compile the config without
 * binding sockets, so certificates, keys and references are verified too.
 * Exit 0 when valid, 1 with issues at file:line:col.
 */
import { readFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { compileRuntime } from '../compile.js'
import { ConfigError, formatIssue } from '../config/issues.js'
import { loadConfig, withPositions } from '../config/load.js'
import { systemClock } from '../shared/clock.js'
import { silentLogger } from '../shared/log.js'

export async function runValidate(args: string[]): Promise<number> {
  const file = args[0]
  if (!file) throw new Error('usage: portcullis validate FILE')
  const path = resolve(file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new Error(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code}`)
  }
  const source = { baseDir: dirname(path), env: process.env }
  const loaded = loadConfig(text, file, { source })
  let issues = loaded.ok ? [] : loaded.issues
  if (loaded.ok) {
    try {
      const runtime = await compileRuntime(loaded.config, 1, { source, clock: systemClock, log: silentLogger() })
      await Promise.all([...runtime.upstreams.values()].map((u) => u.destroy()))
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err
      issues = withPositions(err.issues, text, file)
    }
  }
  for (const issue of issues) process.stderr.write(`${formatIssue(issue)}\n`)
  if (issues.length > 0) return 1
  process.stdout.write(`${file}: valid\n`)
  return 0
}
