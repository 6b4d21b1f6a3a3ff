/**
 * docs/configuration.md and docs/config.schema.json, generated from the zod
 * schema so the reference cannot drift from what the loader accepts.
 * `npm run docs` writes both; a test fails when the committed files differ.
 *
 * The Markdown has one section per top-level key and one sub-section per
 * nested object, each with a table of key, type, default and description
 * (the `.describe()` text). Types are derived from the schema; durations and
 * sizes are recognised by probing (see schema-info.ts).
 */
import { z } from 'zod'
import type { $ZodType } from 'zod/v4/core'
import { exampleConfig } from './example.js'
import { maxAliasCount, maxConfigBytes, maxFlowDepth } from './parse-yaml.js'
import { referenceKind } from './references.js'
import { configSchema } from './schema/index.js'
import { descriptionOf, fieldInfo, structural, typeLabel, valueKind } from './schema-info.js'
import { maxSourceFileBytes } from './secrets.js'

/** Duration regex for the editor schema; docs.test.ts checks it agrees with parseDuration. */
export const durationPattern = '^\\d+(\\.\\d+)?(ms|s|m|h|d)$'
/** Size regex (string form) for the editor schema; docs.test.ts checks it agrees with parseSize. */
export const sizePattern = '^\\d+(\\.\\d+)?\\s*(B|KB|MB|GB|KiB|MiB|GiB)?$'

/** The JSON Schema (draft 2020-12) of the config file as written: durations and sizes are strings. */
export function renderJsonSchema(): string {
  const schema = z.toJSONSchema(configSchema, {
    io: 'input',
    override(ctx) {
      caseInsensitivePatterns(ctx.zodSchema as $ZodType, ctx.jsonSchema)
      const kind = valueKind(ctx.zodSchema as $ZodType)
      if (ctx.zodSchema._zod.def.type !== 'pipe' || kind === 'plain') return
      const json = ctx.jsonSchema
      if (kind === 'duration' && json.type === 'string') json.pattern = durationPattern
      if (kind === 'size') for (const branch of json.anyOf ?? []) if (typeof branch === 'object' && branch.type === 'string') branch.pattern = sizePattern
    },
  })
  const { $schema, ...rest } = schema
  const doc = { $schema, title: 'Portcullis configuration', description: 'Generated from src/config/schema by `npm run docs`. Do not edit.', ...rest }
  return `${JSON.stringify(doc, null, 2)}\n`
}

/**
 * JSON Schema patterns have no flags, and zod drops the `i` of names and host
 * patterns, so editors would flag "Edge" that the loader accepts. Our
 * case-insensitive patterns only use lowercase ranges; widen those.
 */
function caseInsensitivePatterns(schema: $ZodType, json: { pattern?: string }): void {
  if (schema._zod.def.type !== 'string' || json.pattern === undefined) return
  for (const check of schema._zod.def.checks ?? []) {
    const pattern = (check._zod.def as { pattern?: unknown }).pattern
    if (pattern instanceof RegExp && pattern.flags.includes('i') && json.pattern === pattern.source) {
      json.pattern = pattern.source.replace(/a-z/g, 'a-zA-Z')
    }
  }
}

/** The configuration reference in Markdown. */
export function renderConfigurationDocs(): string {
  const out: string[] = [intro()]
  const root = structural(configSchema)
  if (root._zod.def.type !== 'object') throw new Error('configSchema must be an object')
  for (const [key, field] of Object.entries(root._zod.def.shape)) {
    renderTopLevel(out, key, field)
  }
  return `${out.join('\n').replace(/\n{3,}/g, '\n\n').trimEnd()}\n`
}

function intro(): string {
  return `# Configuration reference

<!-- Generated from src/config/schema/ by \`npm run docs\` (scripts/gen-docs.ts). Do not edit by hand. -->

Portcullis reads one YAML file. \`portcullis validate gateway.yaml\` checks it without starting
the gateway; a running gateway applies a new file on \`SIGHUP\` or through the admin API, and keeps
the old config when the new one has any issue. Editors can validate against
[config.schema.json](config.schema.json).

Every issue is reported with its position and path:

\`\`\`
gateway.yaml:5:15 listeners.0.tls.clientAuth.mode: Invalid option: expected one of "required"|"optional"|"none"
\`\`\`

## Example

\`\`\`yaml
${exampleConfig.trimEnd()}
\`\`\`

## The file

- YAML 1.2 (core schema): \`yes\`, \`no\`, \`on\` and \`off\` are strings, not booleans.
- Unknown keys are errors, and so are duplicate keys.
- Anchors and aliases are allowed for whole values; merge keys (\`<<\`) and tags other than the core ones
  (\`!!str\`, \`!!int\`, ...) are not.
- Limits: ${maxConfigBytes / 1024 / 1024} MiB per file, flow collections (\`[...]\`, \`{...}\`) nested at most
  ${maxFlowDepth} deep, at most ${maxAliasCount} alias expansions, referenced files at most ${maxSourceFileBytes / 1024 / 1024} MiB.
- Beyond single fields, the checker refuses references to undefined listeners, upstreams and
  identities, duplicate names and ports, settings that can never apply (such as \`allowAnonymous\` on a
  route served only by \`required\` listeners) and files or environment variables that cannot be read.

## Value types

| Type | Written as |
| --- | --- |
| duration | A number and a unit: \`250ms\`, \`10s\`, \`1.5m\`, \`2h\`, \`30d\`. |
| size | Bytes as a number (\`8192\`) or a string with a unit: \`512B\`, \`16KiB\`, \`1MiB\`, \`10MB\`. |
| PEM source | One of \`{ file: path }\` (relative to the config file), \`{ pem: text }\` (inline) or \`{ env: VAR }\`. |
| secret | One of \`{ env: VAR }\` or \`{ file: path }\`; never inline, so configs can be shared. One trailing newline is removed. |
| name | 1-63 letters, digits, \`.\`, \`_\` or \`-\`, starting with a letter or digit. |

Listed keys with a default may be left out; keys marked **required** may not; keys with no default
and not required are off when absent.
`
}

function renderTopLevel(out: string[], key: string, field: $ZodType): void {
  const info = fieldInfo(field)
  out.push(`## \`${key}\``, '')
  if (info.description) out.push(info.description, '')
  out.push(`Type: ${docType(field)}. ${defaultText(field, true)}.`, '')
  const nested = objectBelow(field, key)
  if (nested) renderObject(out, nested.path, nested.schema, 3, nested.path === key)
}

/** The object a field holds, directly or as list items or map values, with its doc path. */
function objectBelow(field: $ZodType, path: string): { path: string; schema: $ZodType } | undefined {
  if (referenceKind(field)) return undefined
  const core = structural(field)
  const def = core._zod.def
  if (def.type === 'object') return { path, schema: core }
  if (def.type === 'array') return objectBelow(def.element, `${path}[]`)
  if (def.type === 'record') return objectBelow(def.valueType, `${path}.<name>`)
  return undefined
}

function renderObject(out: string[], path: string, schema: $ZodType, level: number, isSection: boolean): void {
  const core = structural(schema)
  if (core._zod.def.type !== 'object') return
  if (!isSection) {
    out.push(`${'#'.repeat(Math.min(level, 6))} \`${path}\``, '')
    const description = fieldInfo(schema).description ?? descriptionOf(core)
    if (description) out.push(description, '')
  }
  const shape = core._zod.def.shape
  const children: { path: string; schema: $ZodType }[] = []
  out.push('| Key | Type | Default | Description |', '| --- | --- | --- | --- |')
  for (const [key, field] of Object.entries(shape)) {
    const nested = objectBelow(field, `${path}.${key}`)
    if (nested) children.push(nested)
    const type = nested ? `[${docType(field)}](#${slug(nested.path)})` : docType(field)
    out.push(`| \`${key}\` | ${cell(type)} | ${cell(defaultText(field, false))} | ${cell(fieldDescription(field))} |`)
  }
  out.push('')
  for (const child of children) renderObject(out, child.path, child.schema, level + 1, false)
}

/** Type as operators read it: value types by name, containers spelled out. */
function docType(field: $ZodType): string {
  const reference = referenceKind(field)
  if (reference) return reference === 'pem' ? 'PEM source' : 'secret'
  const kind = valueKind(field)
  if (kind !== 'plain') return kind
  const core = structural(field)
  const def = core._zod.def
  if (def.type === 'object') return 'object'
  if (def.type === 'array') return `list of ${plural(docType(def.element))}`
  if (def.type === 'record') {
    // Names (listeners, identities, upstreams) are the restricted strings; other maps take any key.
    const key = structural(def.keyType)._zod.def
    const keyType = key.type === 'string' && (key.checks?.length ?? 0) > 0 ? 'name' : 'string'
    return `map of ${keyType} to ${docType(def.valueType)}`
  }
  return typeLabel(field)
}

function plural(type: string): string {
  if (type === 'object') return 'objects'
  if (type.includes(' | ')) return `(${type})`
  return type
}

function defaultText(field: $ZodType, sentence: boolean): string {
  const info = fieldInfo(field)
  if (info.hasDefault) {
    const value = info.defaultValue
    const shown = typeof value === 'string' ? (value === '' ? '""' : value) : JSON.stringify(value)
    return sentence ? `Default: \`${shown}\`` : `\`${shown}\``
  }
  if (!info.isOptional) return sentence ? 'Required' : '**required**'
  return sentence ? 'Optional; off when absent' : '—'
}

/** The field's description, plus each choice's own description for unions like `{ exact } | { prefix }`. */
function fieldDescription(field: $ZodType): string {
  const info = fieldInfo(field)
  const parts = [info.description ?? '']
  const core = structural(field)
  if (core._zod.def.type === 'union' && !referenceKind(field)) {
    for (const option of core._zod.def.options) {
      const odef = structural(option)._zod.def
      if (odef.type !== 'object') continue
      for (const [key, inner] of Object.entries(odef.shape)) {
        const text = fieldInfo(inner).description
        if (text) parts.push(`\`${key}\`: ${text}`)
      }
    }
  }
  return parts.filter(Boolean).join(' ')
}

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\s*\n\s*/g, ' ')
}

/** GitHub's heading anchors: lowercase, punctuation dropped, spaces to hyphens. */
function slug(path: string): string {
  return `${path}`.toLowerCase().replace(/[^a-z0-9 _-]/g, '').replace(/ /g, '-')
}
