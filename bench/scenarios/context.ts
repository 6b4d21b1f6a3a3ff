/**
 * What every scenario gets: the run's topology and running proxies, the CPU
 * plan, the durations of this mode, and where figures and notes go. Plus the
 * one way a load is measured on a proxy: its process tree's CPU time and peak
 * RSS around the load, and how busy the load client's core was (a client
 * core near 100% means the client, not the proxy, set the pace).
 */
import type { FigureSet, FigureSpec } from '../figures.js'
import { cpuTicks, processTree, sampleRss, treeCpuMicros } from '../proc-stats.js'
import type { CpuPlan, ProxyHandle, Stack } from '../stack.js'
import type { ProxyName, Topology } from '../topology.js'

/** Seconds per measurement in this mode. */
export interface Durations {
  readonly warmUpS: number
  readonly keepAliveS: number
  readonly handshakeS: number
  readonly openLoopS: number
  readonly latencyS: number
}

export interface ScenarioContext {
  readonly topo: Topology
  readonly stack: Stack
  readonly cpus: CpuPlan
  readonly preload: string
  readonly isQuick: boolean
  readonly durations: Durations
  readonly figures: FigureSet
  /** Remarks printed under the table and saved in the result (deduplicated). */
  readonly notes: Set<string>
  /** This run's proxies in measuring order (rotated each run, so drift is spread). */
  readonly order: readonly ProxyName[]
  /** Keep-alive req/s of this run per proxy, for the open-loop rate. */
  readonly keepAliveRps: Map<ProxyName, number>
  /** False when the proxies kept running from an earlier run (quick mode): JIT and pools are warm already. */
  readonly isFreshStart: boolean
  log(message: string): void
}

/** The running proxies of this run, in order. */
export function runningProxies(ctx: ScenarioContext): (ProxyHandle & { isRunning: true })[] {
  return ctx.order.flatMap((name) => {
    const h = ctx.stack.proxies.get(name)
    return h?.isRunning ? [h] : []
  })
}

/** The URL of a proxy's ECDSA (default) or RSA listener. */
export function proxyUrl(ctx: ScenarioContext, proxy: ProxyName, path: string, keyType: 'ec' | 'rsa' = 'ec'): string {
  return `https://127.0.0.1:${ctx.topo.ports[proxy][keyType]}${path}`
}

/** What a proxy spent while `load` ran. */
export interface Measured<T> {
  readonly result: T
  readonly cpuMicros: number
  readonly rssFirstBytes: number
  readonly rssPeakBytes: number
  /** Utilisation of the load client's first core, 0–1. */
  readonly clientCoreBusy: number
}

/** Runs `load` while measuring the proxy's tree (`pid`) and the client's core. */
export async function measure<T>(ctx: ScenarioContext, pid: number, load: () => Promise<T>): Promise<Measured<T>> {
  const pids = processTree(pid)
  const clientCpu = Number(ctx.cpus.clientCpus.split(/[,-]/)[0])
  const cpuBefore = treeCpuMicros(pids)
  const coreBefore = cpuTicks(clientCpu)
  const rss = sampleRss(pid)
  try {
    const result = await load()
    const coreAfter = cpuTicks(clientCpu)
    const { firstBytes, peakBytes } = rss.stop()
    return {
      result,
      cpuMicros: treeCpuMicros(pids) - cpuBefore,
      rssFirstBytes: firstBytes,
      rssPeakBytes: peakBytes,
      clientCoreBusy: (coreAfter.busy - coreBefore.busy) / Math.max(1, coreAfter.total - coreBefore.total),
    }
  } finally {
    rss.stop()
  }
}

/** Adds a figure, or NaN with a note when the measurement is not valid. */
export function record(ctx: ScenarioContext, spec: FigureSpec, proxy: ProxyName, value: number, invalidBecause?: string): void {
  if (invalidBecause) ctx.notes.add(`${proxy}: ${spec.label}: ${invalidBecause}`)
  ctx.figures.add(spec, proxy, invalidBecause ? Number.NaN : value)
}

/** Notes a nearly saturated client core (once per scenario): the figure may be that core's limit, not the proxy's. */
export function checkClientCore(ctx: ScenarioContext, what: string, busy: number): void {
  if (busy > 0.95) {
    ctx.notes.add(`${what}: CPU ${ctx.cpus.clientCpus} (load client, upstream, and any other work on the machine) was over 95% busy in some measurements; those figures may be that core's limit`)
  }
}

export const MB = 1024 * 1024
