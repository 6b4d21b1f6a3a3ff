/**
 * RSS idle: each proxy's process tree after it has started and answered one
 * request (so lazily built state exists), with a second to settle. Measured
 * first in a run; in a full run every proxy was just restarted, in a quick
 * run (proxies kept between runs) runs after the first follow earlier load.
 */
import { execFileSync } from 'node:child_process'
import { rssBytes, processTree, treeRssBytes } from '../proc-stats.js'
import { paths } from '../topology.js'
import { MB, proxyUrl, record, runningProxies, type ScenarioContext } from './context.js'

const spec = { key: 'memory.rss-idle', scenario: 'memory-idle', label: 'RSS idle', unit: 'MB', isHigherBetter: false }

export async function memoryIdle(ctx: ScenarioContext): Promise<void> {
  const pki = ctx.topo.pki.ec
  for (const proxy of runningProxies(ctx)) {
    execFileSync('curl', ['-sS', '-o', '/dev/null', '--cert', pki.clientCert, '--key', pki.clientKey, '--cacert', pki.caCert, proxyUrl(ctx, proxy.name, paths.full)])
    await new Promise((r) => setTimeout(r, ctx.isQuick ? 500 : 1000))
    const bytes = treeRssBytes(processTree(proxy.proc.pid))
    record(ctx, spec, proxy.name, bytes / MB, bytes === 0 || rssBytes(proxy.proc.pid) === 0 ? 'process not found' : undefined)
  }
}
