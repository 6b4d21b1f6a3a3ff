/**
 * Durations and sizes as operators write them in config ("30s", "1MiB") and
 * as code uses them (milliseconds, bytes). Config keeps the human form; the
 * schema converts once, so code never parses per request.
 */

const durationUnits: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }
const durationPattern = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/

/** Parses "250ms", "10s", "5m", "1h", "30d" into milliseconds; undefined when malformed. */
export function parseDuration(text: string): number | undefined {
  const match = durationPattern.exec(text.trim())
  if (!match) return undefined
  const unit = durationUnits[match[2]!]!
  return Math.round(Number(match[1]) * unit)
}

const sizeUnits: Record<string, number> = { B: 1, KB: 1000, MB: 1e6, GB: 1e9, KiB: 1024, MiB: 1024 ** 2, GiB: 1024 ** 3 }
const sizePattern = /^(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|KiB|MiB|GiB)?$/

/** Parses "512", "16KiB", "1MiB", "10MB" into bytes; undefined when malformed. */
export function parseSize(text: string): number | undefined {
  const match = sizePattern.exec(text.trim())
  if (!match) return undefined
  return Math.floor(Number(match[1]) * sizeUnits[match[2] ?? 'B']!)
}
