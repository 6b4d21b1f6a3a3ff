/**
 * Maps a config path (["listeners", 0, "tls"]) to the line and column of its
 * YAML node, so every issue — from the parser, the schema, the checker or the
 * compile step — points into the file the operator edits.
 */
import { isAlias, isMap, isPair, isScalar, isSeq } from 'yaml'
import type { Document, LineCounter, Node } from 'yaml'

/** A 1-based position in the config text. */
export interface Position {
  readonly line: number
  readonly col: number
}

/**
 * Where in the node to point:
 * - "value" (default): the value at the path. When the path does not exist in
 *   the YAML (a missing required key, or a key the check step talks about that
 *   was left to its default), the nearest enclosing node that does, i.e. the
 *   parent mapping.
 * - "key": the key of the last path segment (unknown keys, bad record names).
 */
export type Anchor = 'value' | 'key'

/** Finds positions of paths in one parsed document. */
export interface SourceMap {
  locate(path: readonly PropertyKey[], anchor?: Anchor): Position
}

/** A SourceMap over `doc`, whose offsets `lineCounter` turns into lines. */
export function sourceMap(doc: Document, lineCounter: LineCounter): SourceMap {
  const at = (offset: number): Position => {
    const { line, col } = lineCounter.linePos(offset)
    return { line, col }
  }
  const start = (node: Node | null | undefined, fallback: Position): Position =>
    node?.range ? at(node.range[0]) : fallback

  return {
    locate(path, anchor = 'value') {
      const origin: Position = { line: 1, col: 1 }
      let node = resolve(doc, doc.contents)
      let found = start(node, origin)
      for (let i = 0; i < path.length; i++) {
        const segment = String(path[i])
        const isLast = i === path.length - 1
        if (isMap(node)) {
          const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === segment)
          if (!pair) return found
          const keyNode = pair.key as Node
          if (isLast && anchor === 'key') return start(keyNode, found)
          const value = resolve(doc, pair.value as Node | null)
          // An empty value ("mode:") has a zero-width node right after the colon; point there.
          found = start(value, start(keyNode, found))
          node = value
        } else if (isSeq(node) && /^\d+$/.test(segment)) {
          const item = resolve(doc, node.items[Number(segment)] as Node | undefined)
          if (!item) return found
          found = start(item, found)
          node = item
        } else {
          return found
        }
      }
      return found
    },
  }
}

/** An alias stands for its anchored node; positions point at the anchor's definition. */
function resolve(doc: Document, node: Node | null | undefined): Node | undefined {
  if (node == null) return undefined
  if (isAlias(node)) return (node.resolve(doc) as Node | undefined) ?? node
  return node
}
