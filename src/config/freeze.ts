/**
 * Deep-freezes a validated config, as Fastify freezes its options: compiled
 * routes, stages and the admin API all hold references to the same object, so
 * a stray write in one of them must fail (TypeError in strict-mode ESM)
 * instead of silently changing what the others see.
 */

/**
 * Freezes `value` and everything reachable from it, in place, and returns it.
 * Only plain data is expected (the output of the schema); shared references
 * and cycles are visited once.
 */
export function deepFreeze<T>(value: T): T {
  const seen = new WeakSet<object>()
  const stack: unknown[] = [value]
  while (stack.length > 0) {
    const current = stack.pop()
    if (typeof current !== 'object' || current === null || seen.has(current)) continue
    seen.add(current)
    // Typed arrays cannot be frozen while they have elements; config holds none, so skip rather than throw.
    if (ArrayBuffer.isView(current)) continue
    Object.freeze(current)
    for (const key of Reflect.ownKeys(current)) stack.push((current as Record<PropertyKey, unknown>)[key])
  }
  return value
}
