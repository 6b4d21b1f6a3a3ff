/**
 * Runs the zod schema and turns its issues into operator-facing ones:
 * one issue per unknown key (with a "did you mean"), a missing key reported as
 * such, and unions (`{ file } | { pem } | { env }`) explained by their choices
 * instead of zod's bare "Invalid input". Positions are added by the caller.
 */
import type { $ZodIssue } from 'zod/v4/core'
import { configSchema } from './schema/index.js'
import type { Config } from './schema/index.js'
import type { Anchor } from './locate.js'
import { knownKeys, requiredKeys, schemaAt, structural, typeLabel, valueKind } from './schema-info.js'

/** A schema issue with where its position should come from. */
export interface SchemaIssue {
  readonly path: readonly (string | number)[]
  readonly message: string
  readonly anchor: Anchor
}

/** The validated config (defaults applied, durations in ms, sizes in bytes), or the issues. */
export function validateConfig(input: unknown): { ok: true; config: Config } | { ok: false; issues: SchemaIssue[] } {
  const result = configSchema.safeParse(input)
  if (result.success) return { ok: true, config: result.data }
  return { ok: false, issues: result.error.issues.flatMap((issue) => convert(issue, input, [])) }
}

function convert(issue: $ZodIssue, input: unknown, base: readonly (string | number)[]): SchemaIssue[] {
  const path = [...base, ...issue.path.map((p) => (typeof p === 'number' ? p : String(p)))]
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => ({ path: [...path, key], message: unknownKeyMessage(key, path), anchor: 'key' }))
    case 'invalid_key': {
      const detail = issue.issues.map((i) => i.message).join('; ')
      return [{ path, message: `invalid key ${JSON.stringify(path.at(-1))}: ${detail}`, anchor: 'key' }]
    }
    case 'invalid_union':
      return unionIssues(issue.errors, path, input, issue.message)
    case 'invalid_type': {
      const parent = valueAt(input, path.slice(0, -1))
      const last = path.at(-1)
      if (path.length > 0 && isPlainObject(parent) && typeof last === 'string' && !Object.hasOwn(parent, last)) {
        return [{ path, message: `missing required key "${last}" (expected ${issue.expected})`, anchor: 'value' }]
      }
      const schema = schemaAt(configSchema, path)
      const kind = schema ? valueKind(schema) : 'plain'
      if (kind === 'duration') return [{ path, message: `expected a duration with a unit, like "250ms", "10s" or "5m"; found ${describe(valueAt(input, path))}`, anchor: 'value' }]
      return [{ path, message: issue.message, anchor: 'value' }]
    }
    default:
      return [{ path, message: issue.message, anchor: 'value' }]
  }
}

/**
 * If the value has all required keys of exactly one branch, the operator meant
 * that branch: report its problems. Otherwise list the choices.
 */
function unionIssues(
  branchErrors: readonly (readonly $ZodIssue[])[],
  path: readonly (string | number)[],
  input: unknown,
  fallback: string,
): SchemaIssue[] {
  const schema = schemaAt(configSchema, path)
  if (!schema) return [{ path, message: fallback, anchor: 'value' }]
  const core = structural(schema)
  if (core._zod.def.type !== 'union') return [{ path, message: fallback, anchor: 'value' }]
  const options = core._zod.def.options
  const value = valueAt(input, path)
  if (isPlainObject(value)) {
    const chosen = options
      .map((option, index) => ({ index, required: requiredKeys(option) }))
      .filter((o) => o.required.length > 0 && o.required.every((k) => Object.hasOwn(value, k)))
    if (chosen.length === 1) {
      const errors = branchErrors[chosen[0]!.index] ?? []
      return errors.flatMap((e) => convert(e, input, path))
    }
  }
  const choices = options.map((o) => typeLabel(o)).join(' | ')
  const found = isPlainObject(value) ? `found keys ${Object.keys(value).map((k) => JSON.stringify(k)).join(', ') || '(none)'}` : `found ${describe(value)}`
  return [{ path, message: `expected one of ${choices}; ${found}`, anchor: 'value' }]
}

function unknownKeyMessage(key: string, parentPath: readonly (string | number)[]): string {
  const parent = schemaAt(configSchema, parentPath)
  const known = parent ? knownKeys(parent) : []
  const hint = closest(key, known)
  return `unknown key "${key}"${hint ? ` (did you mean "${hint}"?)` : ''}`
}

/** The known key nearest to `key` by edit distance (≤ 2, or same letters ignoring case). */
function closest(key: string, known: readonly string[]): string | undefined {
  let best: string | undefined
  let bestDistance = 3
  for (const candidate of known) {
    const d = candidate.toLowerCase() === key.toLowerCase() ? 0 : editDistance(key, candidate)
    if (d < bestDistance) {
      best = candidate
      bestDistance = d
    }
  }
  return best
}

function editDistance(a: string, b: string): number {
  if (Math.abs(a.length - b.length) > 2) return 3
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}

/** The raw input value at `path`; undefined when absent. */
export function valueAt(input: unknown, path: readonly (string | number)[]): unknown {
  let current = input
  for (const segment of path) {
    if (Array.isArray(current) && typeof segment === 'number') current = current[segment]
    else if (isPlainObject(current) && Object.hasOwn(current, segment)) current = current[segment]
    else return undefined
  }
  return current
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value)
}

function describe(value: unknown): string {
  if (value === null) return 'null'
  if (Array.isArray(value)) return 'a list'
  if (typeof value === 'number') return `the number ${value}`
  return typeof value === 'string' ? 'a string' : typeof value
}
