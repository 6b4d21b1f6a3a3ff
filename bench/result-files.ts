/**
 * Result files under bench/results/: `<UTC date and time>-<short sha>.json`,
 * so a plain name sort is a time sort and each file says which commit it
 * measured. The baseline for `--check` is the newest file of the same mode
 * (a quick run's short durations give other figures than a full run's).
 */
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import type { ResultFile } from './figures.js'

/** `2025-11-23T143005Z-ea5d749.json` for a start time and a commit. */
export function resultFileName(startedAt: Date, shortSha: string): string {
  const stamp = startedAt.toISOString().replace(/[-:]/g, '').replace(/\.\d+Z$/, 'Z')
  const date = `${stamp.slice(0, 4)}-${stamp.slice(4, 6)}-${stamp.slice(6, 8)}${stamp.slice(8)}`
  return `${date}-${shortSha}.json`
}

/** The newest result in `dir` with `mode`, or undefined; unreadable files are skipped. */
export function latestBaseline(dir: string, mode: ResultFile['mode']): { file: string; result: ResultFile } | undefined {
  let names: string[]
  try {
    names = readdirSync(dir).filter((n) => /^\d{4}-\d{2}-\d{2}T\d{6}Z-[0-9a-f]+\.json$/.test(n))
  } catch {
    return undefined
  }
  for (const name of names.sort().reverse()) {
    try {
      const result = JSON.parse(readFileSync(join(dir, name), 'utf8')) as ResultFile
      if (result.version === 1 && result.mode === mode) return { file: name, result }
    } catch {
      // a half-written or hand-edited file is not a baseline
    }
  }
  return undefined
}
