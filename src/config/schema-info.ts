/**
 * Reads the shape of the zod config schema: what a field's type, default and
 * description are, and which schema governs a path. The loader uses it for
 * better messages ("did you mean", one-of choices), the checker to find PEM and
 * secret references, and docs.ts to render docs/configuration.md, so the
 * three cannot drift from the schema.
 *
 * It reads zod 4's public-but-internal `_zod.def` structures (stable within
 * zod 4; the docs test breaks loudly if they change) rather than keeping a
 * second description of the config by hand.
 */
import { z } from 'zod'
import type { $ZodType, $ZodTypes } from 'zod/v4/core'

/** A schema with its wrappers (optional, default, prefault, ...) peeled off. */
export interface FieldInfo {
  /** The innermost schema that is not a wrapper; pipes are kept (see `kind`). */
  readonly core: $ZodTypes
  /** The key may be absent from the input (optional or defaulted). */
  readonly isOptional: boolean
  /** The default in the operator's input form ("10s", not 10000); absent when none. */
  readonly hasDefault: boolean
  readonly defaultValue?: unknown
  /** The outermost `.describe()` text: the most specific one for this field. */
  readonly description?: string
}

/** Value kinds that are parsed from a human form; found by probing, not by name. */
export type ValueKind = 'duration' | 'size' | 'plain'

function asTypes(schema: $ZodType): $ZodTypes {
  return schema as unknown as $ZodTypes
}

/** `.describe()` text registered on exactly this schema instance. */
export function descriptionOf(schema: $ZodType): string | undefined {
  return z.globalRegistry.get(schema)?.description
}

/** Peels optional/default/prefault/nullable/readonly/catch wrappers. */
export function fieldInfo(schema: $ZodType): FieldInfo {
  let current = asTypes(schema)
  let isOptional = false
  let hasDefault = false
  let defaultValue: unknown
  let description = descriptionOf(current)
  for (;;) {
    const def = current._zod.def
    if (def.type === 'optional' || def.type === 'nullable' || def.type === 'readonly' || def.type === 'catch' || def.type === 'nonoptional') {
      if (def.type === 'optional') isOptional = true
      current = asTypes(def.innerType)
    } else if (def.type === 'default' || def.type === 'prefault') {
      isOptional = true
      if (!hasDefault) {
        hasDefault = true
        defaultValue = def.defaultValue
      }
      current = asTypes(def.innerType)
    } else {
      break
    }
    description ??= descriptionOf(current)
  }
  if (current._zod.def.type === 'pipe') description ??= descriptionOf(current._zod.def.in)
  return hasDefault
    ? { core: current, isOptional, hasDefault, defaultValue, ...(description !== undefined && { description }) }
    : { core: current, isOptional, hasDefault, ...(description !== undefined && { description }) }
}

/** The schema that describes the input's structure: a pipe's input side, unwrapped. */
export function structural(schema: $ZodType): $ZodTypes {
  let core = fieldInfo(schema).core
  while (core._zod.def.type === 'pipe') core = fieldInfo(core._zod.def.in).core
  return core
}

/**
 * Durations and sizes are strings (or numbers) that parse to numbers. They are
 * recognised by what the schema does with a sample, so a new duration field
 * needs no registration here.
 */
export function valueKind(schema: $ZodType): ValueKind {
  const core = fieldInfo(schema).core
  if (core._zod.def.type !== 'pipe') return 'plain'
  const probe = (input: string): unknown => {
    const result = z.safeParse(core, input)
    return result.success ? result.data : undefined
  }
  if (probe('2s') === 2000 && probe('1m') === 60_000) return 'duration'
  if (probe('2KiB') === 2048) return 'size'
  return 'plain'
}

/** Keys an object schema requires in its input. */
export function requiredKeys(schema: $ZodType): string[] {
  const core = structural(schema)
  if (core._zod.def.type !== 'object') return []
  return Object.entries(core._zod.def.shape)
    .filter(([, field]) => !fieldInfo(field).isOptional)
    .map(([key]) => key)
}

/**
 * The schema governing `path` in the input, or undefined when the path leaves
 * the schema or passes through a union that the next key does not decide.
 */
export function schemaAt(root: $ZodType, path: readonly PropertyKey[]): $ZodType | undefined {
  let current: $ZodType = root
  for (const segment of path) {
    const core = structural(current)
    const def = core._zod.def
    const next = childOf(core, String(segment))
    if (next) {
      current = next
      continue
    }
    if (def.type !== 'union') return undefined
    const branches = def.options.map((option) => childOf(structural(option), String(segment))).filter((s) => s !== undefined)
    if (branches.length !== 1) return undefined
    current = branches[0]!
  }
  return current
}

function childOf(core: $ZodTypes, key: string): $ZodType | undefined {
  const def = core._zod.def
  if (def.type === 'object') return Object.hasOwn(def.shape, key) ? def.shape[key] : undefined
  if (def.type === 'array') return /^\d+$/.test(key) ? def.element : undefined
  if (def.type === 'record') return def.valueType
  return undefined
}

/** Keys an object schema knows, for "did you mean" hints; [] when not an object. */
export function knownKeys(schema: $ZodType): string[] {
  const core = structural(schema)
  return core._zod.def.type === 'object' ? Object.keys(core._zod.def.shape) : []
}

/**
 * A short type label for messages and docs: `string`, `integer (0–65535)`,
 * `duration`, `"a" | "b"`, `list of string`, `{ file } | { pem }`, ...
 */
export function typeLabel(schema: $ZodType): string {
  const kind = valueKind(schema)
  if (kind !== 'plain') return kind
  const core = structural(schema)
  const def = core._zod.def
  switch (def.type) {
    case 'string':
      return 'string'
    case 'boolean':
      return 'boolean'
    case 'number':
      return numberLabel(core)
    case 'literal':
      return def.values.map((v) => JSON.stringify(v)).join(' | ')
    case 'enum':
      return Object.values(def.entries).map((v) => JSON.stringify(v)).join(' | ')
    case 'array':
      return `list of ${wrapUnion(typeLabel(def.element))}`
    case 'record':
      return `map of ${typeLabel(def.keyType)} to ${wrapUnion(typeLabel(def.valueType))}`
    case 'object': {
      return `{ ${Object.keys(def.shape).join(', ')} }`
    }
    case 'union':
      return def.options.map((o) => typeLabel(o)).join(' | ')
    default:
      return def.type
  }
}

function wrapUnion(label: string): string {
  return label.includes(' | ') ? `(${label})` : label
}

function numberLabel(core: $ZodTypes): string {
  let isInteger = false
  const bounds: string[] = []
  for (const check of core._zod.def.checks ?? []) {
    const cdef = check._zod.def as { check: string; format?: string; value?: unknown; inclusive?: boolean }
    if (cdef.check === 'number_format' && /int/.test(cdef.format ?? '')) isInteger = true
    if (cdef.check === 'greater_than') bounds.unshift(`${cdef.inclusive ? '≥' : '>'} ${String(cdef.value)}`)
    if (cdef.check === 'less_than') bounds.push(`${cdef.inclusive ? '≤' : '<'} ${String(cdef.value)}`)
  }
  const base = isInteger ? 'integer' : 'number'
  return bounds.length > 0 ? `${base} (${bounds.join(', ')})` : base
}
