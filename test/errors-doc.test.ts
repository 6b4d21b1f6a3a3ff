/**
 * docs/errors.md and the reason table agree both ways, as Fastify's errors
 * test does: every reason has a section stating its status, and every
 * section names a reason.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { reasons, type Reason } from '../src/shared/reasons.js'

const doc = readFileSync(join(import.meta.dirname, '..', 'docs', 'errors.md'), 'utf8')

/** `## name` headings with the text up to the next heading. */
const sections = new Map<string, string>()
const headings: string[] = []
for (const part of doc.split(/^## /m).slice(1)) {
  const newline = part.indexOf('\n')
  const name = (newline < 0 ? part : part.slice(0, newline)).trim()
  headings.push(name)
  sections.set(name, newline < 0 ? '' : part.slice(newline))
}

test('every reason code has a section in docs/errors.md', () => {
  const missing = Object.keys(reasons).filter((r) => !sections.has(r))
  assert.deepEqual(missing, [])
})

test('every section in docs/errors.md is a reason code, once', () => {
  const unknown = headings.filter((h) => !Object.hasOwn(reasons, h))
  assert.deepEqual(unknown, [])
  assert.equal(new Set(headings).size, headings.length, 'duplicate sections')
})

test('each section states the status the reason table gives', () => {
  for (const [name, body] of sections) {
    if (!Object.hasOwn(reasons, name)) continue
    const stated = /\*\*Status:\*\* (\d{3})/.exec(body)?.[1]
    assert.equal(Number(stated), reasons[name as Reason].status, name)
  }
})
