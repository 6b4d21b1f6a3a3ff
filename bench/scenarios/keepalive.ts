/**
 * Keep-alive throughput and latency: 50 connections sending requests back to
 * back with a client certificate, over HTTP/1.1 (wrk) and HTTP/2 (h2load,
 * 5 connections × 10 streams). The path is Portcullis's full pipeline route.
 * Besides req/s and latency percentiles: the proxy's CPU time per request
 * (from /proc, so it holds even when the machine is busy) and its peak RSS
 * under the load.
 */
import { join } from 'node:path'
import { runH2load } from '../clients/h2load.js'
import { runWrk } from '../clients/wrk.js'
import { paths, type ProxyName } from '../topology.js'
import { checkClientCore, MB, measure, proxyUrl, record, runningProxies, type ScenarioContext } from './context.js'

const connections = 50

function specs(protocol: 'h1' | 'h2') {
  const scenario = `keepalive-${protocol}`
  const name = protocol === 'h1' ? 'HTTP/1.1' : 'HTTP/2'
  const fig = (key: string, label: string, unit: string, isHigherBetter: boolean) => ({ key: `${scenario}.${key}`, scenario, label: `${name} keep-alive ${label}`, unit, isHigherBetter })
  return {
    rps: fig('rps', 'req/s', 'req/s', true),
    p50: fig('p50', 'p50', 'ms', false),
    p99: fig('p99', 'p99', 'ms', false),
    p999: fig('p999', 'p99.9', 'ms', false),
    cpu: fig('cpu-per-request', 'CPU/request', 'µs', false),
    rss: fig('rss-peak', 'RSS under load', 'MB', false),
  }
}

/** A short unrecorded load, so JIT and pools are warm before anything is recorded. */
async function warmUp(ctx: ScenarioContext, proxy: ProxyName): Promise<void> {
  const pki = ctx.topo.pki.ec
  await runWrk({ url: proxyUrl(ctx, proxy, paths.full), connections: 10, threads: 1, durationS: ctx.durations.warmUpS, preload: ctx.preload, cert: pki.clientCert, key: pki.clientKey, cpus: ctx.cpus.clientCpus })
}

export async function keepAliveH1(ctx: ScenarioContext): Promise<void> {
  const s = specs('h1')
  const pki = ctx.topo.pki.ec
  for (const proxy of runningProxies(ctx)) {
    if (ctx.isFreshStart) await warmUp(ctx, proxy.name)
    const m = await measure(ctx, proxy.proc.pid, () =>
      runWrk({ url: proxyUrl(ctx, proxy.name, paths.full), connections, threads: 1, durationS: ctx.durations.keepAliveS, preload: ctx.preload, cert: pki.clientCert, key: pki.clientKey, cpus: ctx.cpus.clientCpus }))
    const r = m.result
    const invalid = r.errors > 0 ? `${r.errors} errors or non-2xx answers` : r.requests === 0 ? 'no requests answered' : undefined
    const rps = r.requests / (r.durationUs / 1e6)
    if (!invalid) ctx.keepAliveRps.set(proxy.name, rps)
    record(ctx, s.rps, proxy.name, rps, invalid)
    record(ctx, s.p50, proxy.name, r.latencyUs.p50 / 1000, invalid)
    record(ctx, s.p99, proxy.name, r.latencyUs.p99 / 1000, invalid)
    record(ctx, s.p999, proxy.name, r.latencyUs.p999 / 1000, invalid)
    record(ctx, s.cpu, proxy.name, m.cpuMicros / r.requests, invalid)
    record(ctx, s.rss, proxy.name, m.rssPeakBytes / MB, invalid)
    checkClientCore(ctx, 'HTTP/1.1 keep-alive', m.clientCoreBusy)
    ctx.log(`  ${proxy.name}: HTTP/1.1 ${Math.round(rps)} req/s, p99 ${(r.latencyUs.p99 / 1000).toFixed(1)} ms, ${Math.round(m.cpuMicros / r.requests)} µs CPU/req, client core ${Math.round(m.clientCoreBusy * 100)}%`)
  }
}

export async function keepAliveH2(ctx: ScenarioContext): Promise<void> {
  const s = specs('h2')
  const pki = ctx.topo.pki.ec
  for (const proxy of runningProxies(ctx)) {
    const ports = ctx.topo.ports[proxy.name]
    const url = `https://127.0.0.1:${ports.h2 ?? ports.ec}${paths.full}`
    const m = await measure(ctx, proxy.proc.pid, () =>
      runH2load({ url, connections: 5, streamsPerConnection: 10, durationS: ctx.durations.keepAliveS, preload: ctx.preload, cert: pki.clientCert, key: pki.clientKey, cpus: ctx.cpus.clientCpus, logFile: join(ctx.topo.dir, 'h2load.log') }))
    const r = m.result
    const invalid = r.errors > 0 ? `${r.errors} failed or non-200 answers` : r.requests === 0 ? 'no requests answered' : undefined
    const rps = r.requests / (r.durationUs / 1e6)
    record(ctx, s.rps, proxy.name, rps, invalid)
    record(ctx, s.p50, proxy.name, r.latencyUs.p50 / 1000, invalid)
    record(ctx, s.p99, proxy.name, r.latencyUs.p99 / 1000, invalid)
    record(ctx, s.p999, proxy.name, r.latencyUs.p999 / 1000, invalid)
    record(ctx, s.cpu, proxy.name, m.cpuMicros / r.requests, invalid)
    checkClientCore(ctx, 'HTTP/2 keep-alive', m.clientCoreBusy)
    ctx.log(`  ${proxy.name}: HTTP/2 ${Math.round(rps)} req/s, p99 ${(r.latencyUs.p99 / 1000).toFixed(1)} ms`)
  }
}
