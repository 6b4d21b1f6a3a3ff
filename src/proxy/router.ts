/**
 * The request router: (listener, host, method, normalised path) → route.
 * Compiled once per config. `find` allocates nothing for exact and prefix
 * matches and for denials (results and 404/405 values are prebuilt and
 * frozen); a pattern match builds its params object, and a wildcard-host
 * lookup slices the host once. Exact paths and hosts are map lookups;
 * patterns (bucketed by segment count) and prefixes are scanned in
 * precedence order, so cost grows with the routes of one host.
 *
 * Why not find-my-way (installed, and fast): its precedence is decided per
 * trie node, left to right (a static segment beats a parameter at the first
 * position they differ), while ours ranks patterns by how many static
 * segments they have; it has no notion of a prefix that is weaker than every
 * pattern, nor of host tiers with fall-through; it decodes parameters again
 * (we decode exactly once, in path.ts, so a kept `%2F` must stay `%2F`); and
 * a 405 with `Allow` needs a lookup across all methods. Bending it to these
 * rules would cost more code than this file.
 */
import { ConfigError, type ConfigIssue } from '../config/issues.js'
import type { Denial } from '../shared/reasons.js'
import { normalizePath } from './path.js'

/**
 * The methods a route can name; `methods: []` means all of these (as the
 * routes schema says), so CONNECT, TRACE and extension methods never reach an
 * upstream: a path that matches answers them 405.
 */
export const ROUTABLE_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

/** How a route matches the path; the same shape as the routes schema's `match.path`. */
export type PathMatch = { readonly exact: string } | { readonly prefix: string } | { readonly pattern: string }

/** One route as the router sees it. */
export interface RouterEntry<R> {
  readonly route: R
  /** Listener names the route is served on; [] = all. */
  readonly listeners: readonly string[]
  /** Lowercase host names, or "*.suffix" for exactly one more label; [] = any host. */
  readonly hosts: readonly string[]
  readonly path: PathMatch
  /** Subset of ROUTABLE_METHODS; [] = all of them. HEAD is not implied by GET. */
  readonly methods: readonly string[]
  /** Index of the route in config `routes`, for ConfigError paths. Default: position in the entries. */
  readonly index?: number
}

/** A routing result; `params` holds pattern captures, as they appear in the normalised path (not decoded). */
export interface RouteMatch<R> {
  readonly route: R
  readonly params: Readonly<Record<string, string>>
}

/** A compiled router; immutable and safe to share between requests. */
export interface Router<R> {
  /**
   * Finds the route for a request. `host` must be lowercase without port (one
   * trailing dot is ignored); `path` must come from normalizePath.
   * Returns route_not_found, or method_not_allowed with an `Allow` header when
   * some route matches host and path but none the method.
   */
  find(listener: string, host: string, method: string, path: string): RouteMatch<R> | Denial
}

const EMPTY_PARAMS: Readonly<Record<string, string>> = Object.freeze({})
const ALL_METHODS = (1 << ROUTABLE_METHODS.length) - 1
const METHOD_BIT = new Map<string, number>(ROUTABLE_METHODS.map((m, i) => [m, i]))
const NOT_FOUND: Denial = Object.freeze({ reason: 'route_not_found', detail: 'no route matches listener, host and path' })
/** One frozen 405 per possible Allow set, built once: no allocation when answering floods. */
const NOT_ALLOWED: readonly Denial[] = Array.from({ length: ALL_METHODS + 1 }, (_, mask) =>
  Object.freeze({
    reason: 'method_not_allowed' as const,
    detail: 'a route matches host and path, none the method',
    headers: Object.freeze({ allow: ROUTABLE_METHODS.filter((_, i) => mask & (1 << i)).join(', ') }),
  }),
)

interface Target<R> {
  readonly index: number
  /** Precomputed result for matches without params. */
  readonly match: RouteMatch<R>
}

/** The routes sharing one path matcher in one host tier, by method. */
interface Slot<R> {
  readonly byMethod: (Target<R> | undefined)[]
  mask: number
}

interface Pattern<R> {
  /** Static text per segment, or null for a parameter. */
  readonly segments: readonly (string | null)[]
  readonly names: readonly string[]
  readonly statics: number
  readonly slot: Slot<R>
}

interface PathTable<R> {
  readonly exact: Map<string, Slot<R>>
  /** Ordered most specific first, bucketed by segment count. */
  readonly patterns: Map<number, Pattern<R>[]>
  readonly patternKeys: Map<string, Pattern<R>>
  /** Longest first. */
  readonly prefixes: { readonly prefix: string; readonly slot: Slot<R> }[]
}

interface HostTable<R> {
  readonly exact: Map<string, PathTable<R>>
  /** Keyed by the suffix with its leading dot: "*.example.com" → ".example.com". */
  readonly wildcard: Map<string, PathTable<R>>
  any: PathTable<R> | undefined
}

/**
 * Compiles the entries; throws ConfigError for a malformed path, pattern,
 * host or method, and when two routes would match the same request (same
 * listener, host, path matcher and an overlapping method), naming both.
 *
 * Precedence, when several routes match a request:
 * 1. Host: a route naming the exact host, then one naming "*.suffix", then
 *    any-host routes. "*.example.com" matches exactly one label
 *    ("a.example.com", not "example.com" nor "a.b.example.com"), as in
 *    RFC 6125 certificate names.
 * 2. Within a host tier: an exact path, then patterns (more static segments
 *    first; on a tie the one whose first differing segment is static), then
 *    prefixes, longest first. A prefix matches at a segment boundary: "/api"
 *    matches "/api" and "/api/x", not "/apix".
 * 3. The method is a match condition like host and path: if the best route for
 *    the path does not take the method, a less specific route that does is
 *    used. Only when no route takes it is the answer 405.
 * Parameters match one non-empty segment. Trailing slashes are significant.
 * Configured paths must already be in normal form (path.ts), else they could
 * never match; that is a config error with the normal form in the message.
 */
export function compileRouter<R>(entries: readonly RouterEntry<R>[]): Router<R> {
  const issues: ConfigIssue[] = []
  const conflicts = new Set<string>()
  const compiled = entries.map((entry, position) => compileEntry(entry, entry.index ?? position, issues))
  if (issues.length > 0) throw new ConfigError(issues)

  let maxSegments = 0
  for (const e of compiled) if (e && e.pattern) maxSegments = Math.max(maxSegments, e.pattern.segments.length)

  const build = (listener: string | undefined): HostTable<R> => {
    const table: HostTable<R> = { exact: new Map(), wildcard: new Map(), any: undefined }
    for (const e of compiled) {
      if (!e || (listener === undefined ? e.listeners.length > 0 : e.listeners.length > 0 && !e.listeners.includes(listener))) continue
      const tiers: PathTable<R>[] = []
      if (e.hosts.length === 0) tiers.push((table.any ??= newPathTable()))
      for (const host of new Set(e.hosts)) {
        const map = host.startsWith('*.') ? table.wildcard : table.exact
        const key = host.startsWith('*.') ? host.slice(1) : host
        let t = map.get(key)
        if (!t) map.set(key, (t = newPathTable()))
        tiers.push(t)
      }
      for (const t of tiers) {
        const other = insert(t, e)
        if (other !== undefined) {
          const id = `${other}/${e.index}`
          if (!conflicts.has(id)) {
            conflicts.add(id)
            issues.push({
              path: ['routes', e.index],
              message: `routes ${other} and ${e.index} match the same requests (same hosts, path and an overlapping method${listener ? ` on listener "${listener}"` : ''}); make one more specific`,
            })
          }
        }
      }
    }
    for (const t of allTables(table)) for (const list of t.patterns.values()) list.sort(comparePatterns)
    for (const t of allTables(table)) t.prefixes.sort((a, b) => b.prefix.length - a.prefix.length)
    return table
  }

  const named = new Map<string, HostTable<R>>()
  for (const e of compiled) for (const l of e?.listeners ?? []) if (!named.has(l)) named.set(l, build(l))
  const fallback = build(undefined)
  if (issues.length > 0) throw new ConfigError(issues)

  // Per-request scratch: start offset of each path segment. Safe to share: find is synchronous.
  const starts = new Int32Array(maxSegments + 1)
  let allow = 0 // methods of routes matching host and path, collected during one find

  const matchTable = (t: PathTable<R>, bit: number, path: string, segCount: number): RouteMatch<R> | undefined => {
    const exact = t.exact.get(path)
    if (exact) {
      const hit = bit >= 0 ? exact.byMethod[bit] : undefined
      if (hit) return hit.match
      allow |= exact.mask
    }
    const bucket = segCount <= maxSegments ? t.patterns.get(segCount) : undefined
    if (bucket) {
      for (const p of bucket) {
        if (!matchesPattern(p, path, starts, segCount)) continue
        const hit = bit >= 0 ? p.slot.byMethod[bit] : undefined
        if (hit) return { route: hit.match.route, params: captureParams(p, path, starts, segCount) }
        allow |= p.slot.mask
      }
    }
    for (const { prefix, slot } of t.prefixes) {
      if (!path.startsWith(prefix)) continue
      if (path.length !== prefix.length && prefix.charCodeAt(prefix.length - 1) !== 0x2f && path.charCodeAt(prefix.length) !== 0x2f) continue
      const hit = bit >= 0 ? slot.byMethod[bit] : undefined
      if (hit) return hit.match
      allow |= slot.mask
    }
    return undefined
  }

  return Object.freeze({
    find(listener: string, host: string, method: string, path: string): RouteMatch<R> | Denial {
      const table = named.get(listener) ?? fallback
      const bit = METHOD_BIT.get(method) ?? -1
      if (host.charCodeAt(host.length - 1) === 0x2e) host = host.slice(0, -1)
      let segCount = 0
      if (maxSegments > 0) {
        for (let i = 0; i < path.length; i++) {
          if (path.charCodeAt(i) !== 0x2f) continue
          if (segCount < maxSegments) starts[segCount] = i + 1
          segCount++
        }
      }
      allow = 0
      let t = table.exact.get(host)
      let found = t && matchTable(t, bit, path, segCount)
      if (found) return found
      if (table.wildcard.size > 0) {
        const dot = host.indexOf('.')
        // The one allocation: the suffix string, only when wildcard hosts exist.
        t = dot > 0 ? table.wildcard.get(host.slice(dot)) : undefined
        found = t && matchTable(t, bit, path, segCount)
        if (found) return found
      }
      found = table.any && matchTable(table.any, bit, path, segCount)
      if (found) return found
      return allow === 0 ? NOT_FOUND : NOT_ALLOWED[allow]!
    },
  })
}

interface CompiledEntry<R> {
  readonly index: number
  readonly route: R
  readonly listeners: readonly string[]
  readonly hosts: readonly string[]
  readonly mask: number
  /** Key for exact and prefix maps; for patterns, the shape with parameter names erased. */
  readonly kind: 'exact' | 'prefix' | 'pattern'
  readonly key: string
  readonly pattern: Omit<Pattern<R>, 'slot'> | undefined
}

const PARAM = /^:[A-Za-z_][A-Za-z0-9_]*$/
const HOST = /^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/

function compileEntry<R>(entry: RouterEntry<R>, index: number, issues: ConfigIssue[]): CompiledEntry<R> | undefined {
  const at = (...rest: (string | number)[]) => ['routes', index, ...rest]
  const before = issues.length
  let mask = 0
  for (const m of entry.methods) {
    const bit = METHOD_BIT.get(m)
    if (bit === undefined) issues.push({ path: at('match', 'methods'), message: `method "${m}" cannot be routed (one of ${ROUTABLE_METHODS.join(', ')})` })
    else mask |= 1 << bit
  }
  if (entry.methods.length === 0) mask = ALL_METHODS
  const hosts = entry.hosts.map((h) => h.toLowerCase())
  for (const h of hosts) if (!HOST.test(h)) issues.push({ path: at('match', 'hosts'), message: `invalid host "${h}" (a name or "*.suffix")` })

  const [kind, text] = 'exact' in entry.path ? (['exact', entry.path.exact] as const) : 'prefix' in entry.path ? (['prefix', entry.path.prefix] as const) : (['pattern', entry.path.pattern] as const)
  const normal = normalizePath(text, { encodedSlash: 'keep', mergeSlashes: false })
  if ('reason' in normal || normal.path !== text || text.includes('?')) {
    const hint = 'reason' in normal ? normal.detail : normal.query ? 'no query allowed' : `write it as "${normal.path}"`
    issues.push({ path: at('match', 'path', kind), message: `path "${text}" is not in normal form and could never match: ${hint}` })
  }

  let pattern: CompiledEntry<R>['pattern']
  let key = text
  let effectiveKind: CompiledEntry<R>['kind'] = kind
  if (kind === 'pattern') {
    const segments: (string | null)[] = []
    const names: string[] = []
    for (const seg of text.slice(1).split('/')) {
      if (!seg.startsWith(':')) {
        segments.push(seg)
        continue
      }
      if (!PARAM.test(seg)) issues.push({ path: at('match', 'path', 'pattern'), message: `"${seg}" is not a parameter name (":" then letters, digits, "_")` })
      else if (seg === ':__proto__') issues.push({ path: at('match', 'path', 'pattern'), message: '":__proto__" cannot name a parameter' })
      else if (names.includes(seg.slice(1))) issues.push({ path: at('match', 'path', 'pattern'), message: `parameter "${seg}" appears twice` })
      names.push(seg.slice(1))
      segments.push(null)
    }
    if (names.length === 0) effectiveKind = 'exact' // a pattern without parameters is an exact path
    else {
      key = '/' + segments.map((s) => s ?? ':').join('/')
      pattern = { segments, names, statics: segments.length - names.length }
    }
  }
  if (issues.length > before) return undefined
  return { index, route: entry.route, listeners: entry.listeners, hosts, mask, kind: effectiveKind, key, pattern }
}

function newPathTable<R>(): PathTable<R> {
  return { exact: new Map(), patterns: new Map(), patternKeys: new Map(), prefixes: [] }
}

function allTables<R>(t: HostTable<R>): PathTable<R>[] {
  return [...t.exact.values(), ...t.wildcard.values(), ...(t.any ? [t.any] : [])]
}

/** Adds the entry to its slot; returns the index of a route it collides with, if any. */
function insert<R>(t: PathTable<R>, e: CompiledEntry<R>): number | undefined {
  let slot: Slot<R> | undefined
  if (e.kind === 'exact') {
    slot = t.exact.get(e.key)
    if (!slot) t.exact.set(e.key, (slot = newSlot()))
  } else if (e.kind === 'prefix') {
    slot = t.prefixes.find((p) => p.prefix === e.key)?.slot
    if (!slot) t.prefixes.push({ prefix: e.key, slot: (slot = newSlot()) })
  } else {
    const existing = t.patternKeys.get(e.key)
    if (existing) slot = existing.slot
    else {
      slot = newSlot()
      const p: Pattern<R> = { ...e.pattern!, slot }
      t.patternKeys.set(e.key, p)
      const list = t.patterns.get(p.segments.length)
      if (list) list.push(p)
      else t.patterns.set(p.segments.length, [p])
    }
  }
  const target: Target<R> = { index: e.index, match: Object.freeze({ route: e.route, params: EMPTY_PARAMS }) }
  let collision: number | undefined
  for (let bit = 0; bit < ROUTABLE_METHODS.length; bit++) {
    if (!(e.mask & (1 << bit))) continue
    const held = slot.byMethod[bit]
    if (held && held.index !== e.index) collision ??= held.index
    else slot.byMethod[bit] = target
  }
  slot.mask |= e.mask
  return collision
}

function newSlot<R>(): Slot<R> {
  return { byMethod: new Array<Target<R> | undefined>(ROUTABLE_METHODS.length).fill(undefined), mask: 0 }
}

/** More static segments first; then static before parameter at the first difference; then by text. */
function comparePatterns<R>(a: Pattern<R>, b: Pattern<R>): number {
  if (a.statics !== b.statics) return b.statics - a.statics
  for (let i = 0; i < a.segments.length; i++) {
    const x = a.segments[i] as string | null
    const y = b.segments[i] as string | null
    if ((x === null) !== (y === null)) return x === null ? 1 : -1
    if (x !== null && y !== null && x !== y) return x < y ? -1 : 1
  }
  return 0
}

function segmentEnd(path: string, starts: Int32Array, i: number, count: number): number {
  return i + 1 < count ? starts[i + 1]! - 1 : path.length
}

function matchesPattern<R>(p: Pattern<R>, path: string, starts: Int32Array, count: number): boolean {
  for (let i = 0; i < count; i++) {
    const start = starts[i]!
    const end = segmentEnd(path, starts, i, count)
    const seg = p.segments[i]
    if (seg === null) {
      if (end === start) return false
    } else if (end - start !== seg!.length || !path.startsWith(seg!, start)) return false
  }
  return true
}

function captureParams<R>(p: Pattern<R>, path: string, starts: Int32Array, count: number): Record<string, string> {
  const params: Record<string, string> = {}
  let n = 0
  for (let i = 0; i < count; i++) {
    if (p.segments[i] !== null) continue
    params[p.names[n++]!] = path.slice(starts[i]!, segmentEnd(path, starts, i, count))
  }
  return params
}
