/**
 * Latency at a fixed request rate: half of the slowest proxy's keep-alive
 * maximum in this run, the same rate for every proxy, sent open loop (see
 * clients/open-loop.ts) over 50 connections. Needs keepalive-h1 earlier in
 * the run for the rate.
 */
import { execFile } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildScript } from '../build-tools.js'
import type { OpenLoopOptions } from '../clients/open-loop.js'
import { paths } from '../topology.js'
import { record, runningProxies, type ScenarioContext } from './context.js'

const fig = (key: string, label: string) => ({ key: `open-loop.${key}`, scenario: 'open-loop', label: `fixed rate ${label}`, unit: 'ms', isHigherBetter: false })
const specs = { p50: fig('p50', 'p50'), p99: fig('p99', 'p99'), p999: fig('p999', 'p99.9') }

interface OpenLoopResult {
  requests: number
  errors: number
  achievedRate: number
  latencyUs: { p50: number; p99: number; p999: number }
}

export async function openLoop(ctx: ScenarioContext): Promise<void> {
  if (ctx.keepAliveRps.size === 0) {
    ctx.notes.add('open-loop: skipped; it needs keepalive-h1 earlier in the run for its rate')
    return
  }
  const rate = Math.round(Math.min(...ctx.keepAliveRps.values()) / 2)
  ctx.notes.add(`open-loop: each run at half its slowest proxy's keep-alive req/s (this run: ${rate} req/s)`)
  const script = buildScript('clients/open-loop.ts')
  const pki = ctx.topo.pki.ec
  for (const proxy of runningProxies(ctx)) {
    const options: OpenLoopOptions = {
      port: ctx.topo.ports[proxy.name].ec, path: paths.full, ratePerSecond: rate, durationS: ctx.durations.openLoopS, connections: 50,
      cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert,
    }
    const file = join(ctx.topo.dir, 'open-loop.json')
    writeFileSync(file, JSON.stringify(options))
    const r = await new Promise<OpenLoopResult>((resolve, reject) => {
      execFile('taskset', ['-c', ctx.cpus.clientCpus, process.execPath, script, file], { timeout: (options.durationS + 30) * 1000 }, (err, stdout, stderr) => {
        if (err) reject(new Error(`open-loop client: ${stderr || err.message}`))
        else resolve(JSON.parse(stdout) as OpenLoopResult)
      })
    })
    const invalid = r.errors > 0 ? `${r.errors} failed, non-200 or unanswered requests` : undefined
    record(ctx, specs.p50, proxy.name, r.latencyUs.p50 / 1000, invalid)
    record(ctx, specs.p99, proxy.name, r.latencyUs.p99 / 1000, invalid)
    record(ctx, specs.p999, proxy.name, r.latencyUs.p999 / 1000, invalid)
    ctx.log(`  ${proxy.name}: ${rate} req/s open loop: p50 ${(r.latencyUs.p50 / 1000).toFixed(2)} ms, p99 ${(r.latencyUs.p99 / 1000).toFixed(2)} ms`)
  }
}
