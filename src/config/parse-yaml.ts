/**
 * YAML text → plain object, refusing the YAML features that make a config
 * mean something other than what it looks like. Decisions:
 *
 * - YAML 1.2 core schema only: `yes`/`no`/`on`/`off` are strings, not booleans
 *   (the "Norway problem" of YAML 1.1); a `%YAML 1.1` directive is refused.
 * - Duplicate keys are errors (the last one would silently win).
 * - Merge keys (`<<`) are refused: with overrides and nested merges, what a
 *   route really says is not visible at the route. Anchors and aliases of
 *   whole values are fine.
 * - Keys must be scalars (strings after parsing), and explicit tags other than
 *   the core ones (`!!str`, `!!int`, ...) are refused (`!!binary`, custom tags).
 * - Resource limits, because the admin API accepts config text over the
 *   network: {@link maxConfigBytes}, {@link maxFlowDepth} (deep `[[[[...` makes
 *   the yaml composer exhaust memory fatally, so depth is checked on the token
 *   stream before composing), and {@link maxAliasCount} alias expansions
 *   ("billion laughs").
 * - One document per file; warnings are treated as errors.
 */
import { Lexer, LineCounter, isScalar, parseDocument, visit } from 'yaml'
import type { Document, Node } from 'yaml'
import type { ConfigIssue } from './issues.js'
import { sourceMap } from './locate.js'
import type { SourceMap } from './locate.js'

/** Largest config accepted, in bytes (UTF-8). Real configs are a few hundred KiB at most. */
export const maxConfigBytes = 4 * 1024 * 1024

/** Deepest nesting of flow collections (`[...]`, `{...}`) accepted. */
export const maxFlowDepth = 64

/** Most alias expansions while building the object (yaml's `maxAliasCount`). */
export const maxAliasCount = 100

/** Parse options shared by {@link parseYaml} and position lookups for later steps. */
const parseOptions = {
  version: '1.2',
  schema: 'core',
  merge: false,
  uniqueKeys: true,
  stringKeys: true,
  strict: true,
  prettyErrors: false,
  logLevel: 'error', // not 'silent': that also drops the MULTIPLE_DOCS error
} as const

const coreTags = new Set(['str', 'int', 'float', 'bool', 'null', 'map', 'seq'].map((t) => `tag:yaml.org,2002:${t}`))

/** A parsed config document: its value, or the issues that stopped it. */
export type ParsedYaml =
  | { readonly ok: true; readonly value: unknown; readonly map: SourceMap }
  | { readonly ok: false; readonly issues: ConfigIssue[] }

/** Parses only for positions; used to place issues found after loading. Never throws. */
export function parseForPositions(text: string): SourceMap | undefined {
  if (Buffer.byteLength(text, 'utf8') > maxConfigBytes || flowDepthError(text) !== undefined) return undefined
  try {
    const lineCounter = new LineCounter()
    const doc = parseDocument(text, { ...parseOptions, lineCounter })
    return sourceMap(doc, lineCounter)
  } catch {
    return undefined
  }
}

/**
 * Parses config text. Issues carry `file`, `line` and `col`; the path is empty
 * for syntax errors, which belong to no key.
 */
export function parseYaml(text: string, file: string): ParsedYaml {
  const bytes = Buffer.byteLength(text, 'utf8')
  if (bytes > maxConfigBytes) {
    return fail(file, { line: 1, col: 1 }, `config is ${bytes} bytes; the limit is ${maxConfigBytes} (4 MiB)`)
  }
  const lineCounter = new LineCounter()
  const depthError = flowDepthError(text)
  if (depthError !== undefined) {
    // linePos needs the counter filled; the lexer does not do that, so count lines here.
    return fail(file, positionOf(text, depthError), `flow collections nested deeper than ${maxFlowDepth}`)
  }

  let doc: Document
  try {
    doc = parseDocument(text, { ...parseOptions, lineCounter })
  } catch (err) {
    // yaml reports problems as doc.errors; a throw here is a yaml bug or a resource limit.
    return fail(file, { line: 1, col: 1 }, `cannot parse YAML: ${(err as Error).name}`)
  }
  const at = (offset: number) => {
    const { line, col } = lineCounter.linePos(offset)
    return { line, col }
  }
  const issues: ConfigIssue[] = [...doc.errors, ...doc.warnings].map((e) => ({
    path: [],
    // yaml's "Map keys must be unique" does not say which key; the key text is at the error's span.
    message: e.code === 'DUPLICATE_KEY' ? `duplicate key ${JSON.stringify(keyAt(doc, e.pos[0]) ?? '')}; YAML keys must be unique` : e.message,
    file,
    ...at(e.pos[0]),
  }))
  if (doc.directives?.yaml.explicit && doc.directives.yaml.version !== '1.2') {
    issues.push({ path: [], message: `only YAML 1.2 is accepted, not ${doc.directives.yaml.version}`, file, line: 1, col: 1 })
  }
  if (issues.length > 0) return { ok: false, issues: sortIssues(issues) }

  issues.push(...featureIssues(doc, file, at))
  if (issues.length > 0) return { ok: false, issues: sortIssues(issues) }

  let value: unknown
  try {
    value = doc.toJS({ maxAliasCount })
  } catch (err) {
    if (!(err instanceof ReferenceError)) throw err
    const first = firstAlias(doc)
    const where = first?.range ? at(first.range[0]) : { line: 1, col: 1 }
    return fail(file, where, `aliases expand to more than ${maxAliasCount} times the nodes they name; refusing (alias bomb)`)
  }
  return { ok: true, value, map: sourceMap(doc, lineCounter) }
}

/** Merge keys and non-core tags, found on the composed document. */
function featureIssues(doc: Document, file: string, at: (offset: number) => { line: number; col: number }): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.value === '<<' && pair.key.range) {
        issues.push({
          path: [],
          message: 'merge keys (<<) are not supported; write the keys out, or alias a whole value',
          file,
          ...at(pair.key.range[0]),
        })
      }
    },
    Node(_, node) {
      if (node.tag !== undefined && !coreTags.has(node.tag) && node.range) {
        issues.push({ path: [], message: `tag ${node.tag} is not supported; only the YAML core tags are`, file, ...at(node.range[0]) })
      }
    },
  })
  return issues
}

/** The text of the mapping key that starts at `offset`, if one does. */
function keyAt(doc: Document, offset: number): string | undefined {
  let found: string | undefined
  visit(doc, {
    Pair(_, pair) {
      if (isScalar(pair.key) && pair.key.range?.[0] === offset) {
        found = String(pair.key.value)
        return visit.BREAK
      }
      return undefined
    },
  })
  return found
}

function firstAlias(doc: Document): Node | undefined {
  let found: Node | undefined
  visit(doc, {
    Alias(_, node) {
      found = node
      return visit.BREAK
    },
  })
  return found
}

/**
 * Offset of the first flow indicator past {@link maxFlowDepth}, or undefined.
 * Works on lexer tokens, so brackets inside quoted or block scalars do not count.
 */
function flowDepthError(text: string): number | undefined {
  let depth = 0
  let offset = 0
  for (const token of new Lexer().lex(text)) {
    // These lexer control tokens mark structure and are not part of the source text.
    if (token === '\x02' || token === '\x18' || token === '\x1f') continue
    if (token === '[' || token === '{') {
      if (++depth > maxFlowDepth) return offset
    } else if (token === ']' || token === '}') {
      depth = Math.max(0, depth - 1)
    }
    offset += token.length
  }
  return undefined
}

function positionOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return { line, col: offset - before.lastIndexOf('\n') }
}

function fail(file: string, where: { line: number; col: number }, message: string): ParsedYaml {
  return { ok: false, issues: [{ path: [], message, file, ...where }] }
}

/** Orders issues by position, keeping the original order among equals. */
export function sortIssues(issues: ConfigIssue[]): ConfigIssue[] {
  return issues
    .map((issue, index) => ({ issue, index }))
    .sort((a, b) => (a.issue.line ?? 0) - (b.issue.line ?? 0) || (a.issue.col ?? 0) - (b.issue.col ?? 0) || a.index - b.index)
    .map((e) => e.issue)
}
