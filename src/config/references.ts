/**
 * Finds every PEM and secret reference (`{ file }`, `{ pem }`, `{ env }`) in a
 * validated config by walking the schema beside the value, so a reference
 * added to any schema file is checked without being registered here.
 */
import type { $ZodType } from 'zod/v4/core'
import type { PemSource, SecretRef } from './schema/common.js'
import { structural } from './schema-info.js'

/** One reference and where it sits in the config. */
export type Reference =
  | { readonly kind: 'pem'; readonly path: readonly (string | number)[]; readonly source: PemSource }
  | { readonly kind: 'secret'; readonly path: readonly (string | number)[]; readonly source: SecretRef }

const referenceKeys = new Set(['file', 'pem', 'env'])

/**
 * A union of one-key objects over `file`/`pem`/`env` is a reference: PEM
 * material when inline `pem` is one of the choices, otherwise a secret (which
 * may never be inline).
 */
export function referenceKind(schema: $ZodType): 'pem' | 'secret' | undefined {
  const core = structural(schema)
  const def = core._zod.def
  if (def.type !== 'union') return undefined
  const keys: string[] = []
  for (const option of def.options) {
    const odef = structural(option)._zod.def
    if (odef.type !== 'object') return undefined
    const shapeKeys = Object.keys(odef.shape)
    if (shapeKeys.length !== 1 || !referenceKeys.has(shapeKeys[0]!)) return undefined
    keys.push(shapeKeys[0]!)
  }
  return keys.includes('pem') ? 'pem' : 'secret'
}

/** All references in `value`, which must be valid for `schema`, in document order. */
export function findReferences(schema: $ZodType, value: unknown, path: readonly (string | number)[] = []): Reference[] {
  if (value === undefined || value === null) return []
  const kind = referenceKind(schema)
  if (kind === 'pem') return [{ kind, path, source: value as PemSource }]
  if (kind === 'secret') return [{ kind, path, source: value as SecretRef }]
  const def = structural(schema)._zod.def
  if (def.type === 'object' && typeof value === 'object') {
    const record = value as Record<string, unknown>
    return Object.entries(def.shape).flatMap(([key, field]) => findReferences(field, record[key], [...path, key]))
  }
  if (def.type === 'array' && Array.isArray(value)) {
    return value.flatMap((item, index) => findReferences(def.element, item, [...path, index]))
  }
  if (def.type === 'record' && typeof value === 'object') {
    return Object.entries(value as Record<string, unknown>).flatMap(([key, item]) => findReferences(def.valueType, item, [...path, key]))
  }
  return []
}
