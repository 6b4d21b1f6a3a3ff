/**
 * SNI name → value tables for certificates and per-name trust bundles.
 * Exact names win over wildcards; "*.example.com" matches exactly one label
 * ("a.example.com", not "example.com" or "b.a.example.com"), as RFC 6125 6.4.3
 * and browsers do. Built at compile time; a lookup is two Map reads.
 */

/** Host name characters an SNI may hold (lowercased). Anything else matches no entry, so "*" sent by a client is never a wildcard. */
const sniName = /^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/

/** SNI names and patterns mapped to values. */
export class ServerNameTable<T> {
  private readonly exact = new Map<string, T>()
  private readonly wildcard = new Map<string, T>()
  /** Patterns listed more than once (a config error the caller reports). */
  readonly duplicates: { readonly pattern: string; readonly index: number; readonly position: number }[] = []

  /** `entries[i].patterns` are lowercased host names or "*.suffix" patterns (the schema lowercases them). */
  constructor(entries: readonly { readonly patterns: readonly string[]; readonly value: T }[]) {
    entries.forEach((entry, index) => {
      entry.patterns.forEach((pattern, position) => {
        const map = pattern.startsWith('*.') ? this.wildcard : this.exact
        const key = pattern.startsWith('*.') ? pattern.slice(1) : pattern
        if (map.has(key)) this.duplicates.push({ pattern, index, position })
        else map.set(key, entry.value)
      })
    })
  }

  /** The value for a client's SNI name (lowercased), or undefined. */
  lookup(name: string): T | undefined {
    if (!sniName.test(name)) return undefined
    const exact = this.exact.get(name)
    if (exact !== undefined) return exact
    const dot = name.indexOf('.')
    return dot > 0 ? this.wildcard.get(name.slice(dot)) : undefined
  }

  /** Every pattern in the table with its value (to build contexts for all reachable combinations). */
  patterns(): [string, T][] {
    return [...[...this.exact].map(([k, v]): [string, T] => [k, v]), ...[...this.wildcard].map(([k, v]): [string, T] => [`*${k}`, v])]
  }
}

/** A concrete name that a pattern stands for, for lookups during compile ("*.a.b" → "_.a.b"). */
export function representative(pattern: string): string {
  return pattern.startsWith('*.') ? `_${pattern.slice(1)}` : pattern
}
