import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { parseDuration, parseSize } from '../shared/duration.js'
import { checkConfig } from './check.js'
import { durationPattern, renderConfigurationDocs, renderJsonSchema, sizePattern } from './docs.js'
import { exampleConfig } from './example.js'
import { parseYaml } from './parse-yaml.js'
import { configSchema } from './schema/index.js'
import { fieldInfo, structural } from './schema-info.js'
import { validateConfig } from './validate.js'
import type { $ZodType } from 'zod/v4/core'

const docsDir = join(import.meta.dirname, '..', '..', 'docs')

test('docs/configuration.md is the one generated from the schema', { timeout: 10_000 }, () => {
  const committed = readFileSync(join(docsDir, 'configuration.md'), 'utf8')
  assert.ok(committed === renderConfigurationDocs(), 'docs/configuration.md is stale: run `npm run docs` and commit the result')
})

test('docs/config.schema.json is the one generated from the schema', { timeout: 10_000 }, () => {
  const committed = readFileSync(join(docsDir, 'config.schema.json'), 'utf8')
  assert.ok(committed === renderJsonSchema(), 'docs/config.schema.json is stale: run `npm run docs` and commit the result')
})

test('the documented example is a valid config', () => {
  const parsed = parseYaml(exampleConfig, 'example.yaml')
  assert.ok(parsed.ok, JSON.stringify(parsed))
  const validated = validateConfig(parsed.value)
  assert.ok(validated.ok, JSON.stringify(validated))
  assert.deepEqual(checkConfig(validated.config), [])
})

test('every documented field has a description, and defaulted ones state their default', () => {
  const missing: string[] = []
  const walk = (schema: $ZodType, path: string): void => {
    const def = structural(schema)._zod.def
    if (def.type === 'array') return walk(def.element, `${path}[]`)
    if (def.type === 'record') return walk(def.valueType, `${path}.<name>`)
    if (def.type !== 'object') return
    for (const [key, field] of Object.entries(def.shape)) {
      const info = fieldInfo(field)
      const isObject = structural(field)._zod.def.type === 'object'
      if (!isObject && !info.description) missing.push(`${path}.${key}: no description`)
      if (!isObject && info.hasDefault && !info.description?.includes('Default:')) missing.push(`${path}.${key}: default not stated`)
      walk(field, `${path}.${key}`)
    }
  }
  walk(configSchema, '')
  assert.deepEqual(missing, [])
})

test('the editor schema patterns accept exactly what the loader parses', () => {
  const durations = ['250ms', '10s', '1.5m', '2h', '30d', '10', '10 s', 's', '-1s', '1e3s', '1w']
  for (const d of durations) assert.equal(new RegExp(durationPattern).test(d), parseDuration(d) !== undefined, d)
  const sizes = ['512', '16KiB', '1MiB', '10MB', '1 GiB', '1TB', 'KiB', '-1', '1.5KiB']
  for (const s of sizes) assert.equal(new RegExp(sizePattern).test(s), parseSize(s) !== undefined, s)
})

test('the editor schema describes the input form: durations as strings, names case-insensitive', () => {
  const schema = JSON.parse(renderJsonSchema())
  const listener = schema.properties.listeners.items.properties
  assert.equal(listener.tls.properties.handshakeTimeout.type, 'string')
  assert.equal(listener.tls.properties.handshakeTimeout.default, '10s')
  assert.equal(listener.tls.properties.handshakeTimeout.pattern, durationPattern)
  assert.ok(new RegExp(listener.name.pattern).test('Edge-1'))
  assert.ok(!new RegExp(listener.name.pattern).test('-edge'))
  assert.equal(schema.additionalProperties, false)
  assert.deepEqual(schema.required, ['version', 'listeners', 'upstreams'])
})

test('the reference has a section per top-level key and a table row per nested key', () => {
  const docs = renderConfigurationDocs()
  const def = structural(configSchema)._zod.def
  assert.equal(def.type, 'object')
  if (def.type !== 'object') return
  for (const key of Object.keys(def.shape)) assert.ok(docs.includes(`\n## \`${key}\`\n`), key)
  assert.ok(docs.includes('#### `listeners[].tls`'))
  assert.ok(docs.includes('| `mode` | "required" \\| "optional" \\| "none" | `required` |'))
  assert.ok(docs.includes('| `handshakeTimeout` | duration | `10s` |'))
  assert.ok(docs.includes('| `port` | integer (≥ 0, ≤ 65535) | **required** |'))
})
