/**
 * One exposition from the registries of several processes (cluster mode: the
 * primary and each worker). Every series gets a `process` label ("primary",
 * "worker-1", ...) and the sets are merged by prom-client's
 * `AggregatorRegistry.aggregate`. Its aggregators combine values with equal
 * labels (summing by default, dropping "omit" metrics); with the `process`
 * label no two values are equal, so each metric is set to "first" and every
 * process keeps its own series — per-process RSS, event-loop lag and checks,
 * which a sum would hide. Dashboards sum over `process` where a total is wanted.
 */
import { AggregatorRegistry, type MetricObjectWithValues, type MetricValue } from 'prom-client'

/** One metric as `Registry.getMetricsAsJSON()` gives it. */
export type SerializedMetric = MetricObjectWithValues<MetricValue<string>>

/** The metrics of one process, and the value of its `process` label. */
export interface ProcessMetrics {
  readonly process: string
  readonly metrics: readonly SerializedMetric[]
}

/** The merged text exposition of every process's metrics. */
export async function mergeProcessMetrics(parts: readonly ProcessMetrics[]): Promise<string> {
  const labelled = parts.map(({ process, metrics }) =>
    metrics.map((m) => ({ ...m, aggregator: 'first' as const, values: m.values.map((v) => ({ ...v, labels: { ...v.labels, process } })) })),
  )
  return AggregatorRegistry.aggregate(labelled as Parameters<typeof AggregatorRegistry.aggregate>[0]).metrics()
}
