/**
 * What Portcullis's per-route pipeline costs: the same upstream through the
 * `full` route (identity match, IP allow list, header hygiene with
 * Client-Cert, access log) and the `bare` one (any verified certificate, no
 * IP filter, no Client-Cert). Latency on one connection, requests one after
 * another, so the median is service time, not queueing; the difference of
 * the medians is the pipeline's added latency. Portcullis only (both modes).
 */
import { runWrk } from '../clients/wrk.js'
import { paths } from '../topology.js'
import { proxyUrl, record, runningProxies, type ScenarioContext } from './context.js'

const fig = (key: string, label: string, unit: string, isHigherBetter: boolean) => ({ key: `pipeline.${key}`, scenario: 'pipeline', label, unit, isHigherBetter })
const specs = {
  bare: fig('bare-p50', 'bare route p50, 1 connection', 'µs', false),
  full: fig('full-p50', 'full pipeline p50, 1 connection', 'µs', false),
  added: fig('added-p50', 'pipeline added latency (p50)', 'µs', false),
}

export async function pipeline(ctx: ScenarioContext): Promise<void> {
  const pki = ctx.topo.pki.ec
  for (const proxy of runningProxies(ctx)) {
    if (proxy.name !== 'portcullis' && proxy.name !== 'portcullis-cluster') continue
    const p50 = async (path: string) => {
      const r = await runWrk({ url: proxyUrl(ctx, proxy.name, path), connections: 1, threads: 1, durationS: ctx.durations.latencyS, preload: ctx.preload, cert: pki.clientCert, key: pki.clientKey, cpus: ctx.cpus.clientCpus })
      return { p50: r.latencyUs.p50, invalid: r.errors > 0 ? `${r.errors} errors or non-2xx answers` : undefined }
    }
    if (ctx.isFreshStart) await p50(paths.bare) // warm the bare route's code paths too
    const bare = await p50(paths.bare)
    const full = await p50(paths.full)
    record(ctx, specs.bare, proxy.name, bare.p50, bare.invalid)
    record(ctx, specs.full, proxy.name, full.p50, full.invalid)
    record(ctx, specs.added, proxy.name, full.p50 - bare.p50, bare.invalid ?? full.invalid)
    ctx.log(`  ${proxy.name}: p50 bare ${bare.p50} µs, full ${full.p50} µs`)
  }
}
