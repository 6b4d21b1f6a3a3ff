/**
 * Writes docs/configuration.md and docs/config.schema.json from the config
 * schema (`npm run docs`). src/config/docs.test.ts fails when the committed
 * files differ from what this would write.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { renderConfigurationDocs, renderJsonSchema } from '../src/config/docs.js'

const docs = join(import.meta.dirname, '..', 'docs')
writeFileSync(join(docs, 'configuration.md'), renderConfigurationDocs())
writeFileSync(join(docs, 'config.schema.json'), renderJsonSchema())
console.log('wrote docs/configuration.md and docs/config.schema.json')
