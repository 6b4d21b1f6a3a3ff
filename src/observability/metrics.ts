/**
 * The process's Prometheus registry. One registry per process, created by the
 * composition root (main.ts) and injected wherever something is measured, so
 * tests can give each gateway its own and nothing reaches for a global.
 *
 * Decisions:
 * - prom-client, with its default process metrics (RSS, CPU, event-loop lag,
 *   GC), under their standard names so existing dashboards work.
 * - Our own metrics are named `portcullis_*`. They are created once per
 *   process with `metric()`: config versions come and go (reload builds new
 *   listeners and checkers), and registering the same name twice throws in
 *   prom-client, so a module asks for its metric by name and gets the one
 *   already registered.
 * - Nothing is measured per request here: request counting belongs to the
 *   access log, which is already one write per request; metrics are for
 *   state (expiry, revocation-check health, connections).
 */
import { collectDefaultMetrics, Registry, type Metric } from 'prom-client'

export type { Registry } from 'prom-client'

/** A new registry with the default process metrics. */
export function createMetricsRegistry(): Registry {
  const registry = new Registry()
  collectDefaultMetrics({ register: registry })
  return registry
}

/**
 * The metric named `name` in `registry`, created by `create` the first time.
 * `create` must register the metric in `registry` (pass `registers: [registry]`).
 * Throws when a metric of that name exists with another type: that is two
 * modules disagreeing about one name, a bug.
 */
export function metric<T extends Metric>(registry: Registry, name: string, create: () => T, type: abstract new (...args: never[]) => T): T {
  const existing = registry.getSingleMetric(name)
  if (existing) {
    if (!(existing instanceof type)) throw new TypeError(`metric ${name} is already registered with another type`)
    return existing
  }
  const created = create()
  if (registry.getSingleMetric(name) !== created) throw new TypeError(`metric ${name} was not registered in the given registry`)
  return created
}
