/**
 * Memory per idle keep-alive connection: a client opens N TLS connections
 * with a certificate, sends one request on each and holds them; the proxy's
 * RSS growth divided by N is what one idle connection costs it. Portcullis's
 * figure minus the naive floor's is what Portcullis adds beyond Node's own
 * TLS socket.
 */
import { spawn } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { buildScript } from '../build-tools.js'
import type { IdleConnectionsOptions } from '../clients/idle-connections.js'
import { processTree, treeRssBytes } from '../proc-stats.js'
import { MB, record, runningProxies, type ScenarioContext } from './context.js'

export async function idleConnections(ctx: ScenarioContext): Promise<void> {
  const count = ctx.isQuick ? 1000 : ctx.topo.idleConnections
  const perConn = { key: 'idle.kb-per-connection', scenario: 'idle-connections', label: `RSS per idle connection (${count})`, unit: 'KB', isHigherBetter: false }
  const total = { key: 'idle.rss-total', scenario: 'idle-connections', label: `RSS with ${count} idle connections`, unit: 'MB', isHigherBetter: false }
  const script = buildScript('clients/idle-connections.ts')
  const pki = ctx.topo.pki.ec
  for (const proxy of runningProxies(ctx)) {
    const options: IdleConnectionsOptions = { port: ctx.topo.ports[proxy.name].ec, count, parallel: 20, cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert }
    const file = join(ctx.topo.dir, 'idle-connections.json')
    writeFileSync(file, JSON.stringify(options))
    const before = treeRssBytes(processTree(proxy.proc.pid))
    const client = spawn('taskset', ['-c', ctx.cpus.clientCpus, process.execPath, script, file], { stdio: ['pipe', 'pipe', 'pipe'] })
    const exited = new Promise((r) => client.once('exit', r))
    let output = ''
    client.stdout.on('data', (d: Buffer) => (output += d.toString()))
    client.stderr.on('data', (d: Buffer) => (output += d.toString()))
    const ready = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 180_000)
      const check = () => {
        if (/READY \d+/.test(output)) {
          clearTimeout(timer)
          resolve(true)
        }
      }
      client.stdout.on('data', check)
      client.once('exit', () => {
        clearTimeout(timer)
        resolve(/READY/.test(output))
      })
    })
    await new Promise((r) => setTimeout(r, 2000)) // let allocations settle
    const after = treeRssBytes(processTree(proxy.proc.pid))
    client.stdin.end()
    setTimeout(() => client.kill('SIGKILL'), 10_000).unref()
    await exited
    const invalid = ready ? undefined : `the client did not open ${count} connections: ${output.trim().split('\n').pop() ?? ''}`
    record(ctx, perConn, proxy.name, (after - before) / count / 1024, invalid)
    record(ctx, total, proxy.name, after / MB, invalid)
    ctx.log(`  ${proxy.name}: ${count} idle connections: +${((after - before) / MB).toFixed(1)} MB, ${((after - before) / count / 1024).toFixed(1)} KB each`)
    await new Promise((r) => setTimeout(r, 1000)) // let the proxy close them before the next one
  }
}
