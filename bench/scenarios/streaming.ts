/**
 * 100 MB through each proxy, down (upstream file → client) and up (client
 * file → sink, which checks the byte count), one transfer at a time:
 * throughput, and how much the proxy's RSS grew during it. A proxy that
 * streams holds a few buffers; one that buffers holds the body.
 */
import { join } from 'node:path'
import { runStream } from '../clients/curl-stream.js'
import { paths, streamBytes } from '../topology.js'
import { MB, measure, proxyUrl, record, runningProxies, type ScenarioContext } from './context.js'

export async function streaming(ctx: ScenarioContext): Promise<void> {
  const pki = ctx.topo.pki.ec
  for (const direction of ['down', 'up'] as const) {
    const name = direction === 'down' ? 'download' : 'upload'
    const rate = { key: `streaming.${direction}`, scenario: 'streaming', label: `100 MB ${name}`, unit: 'MB/s', isHigherBetter: true }
    const growth = { key: `streaming.${direction}.rss-growth`, scenario: 'streaming', label: `RSS growth during ${name}`, unit: 'MB', isHigherBetter: false, hasRatios: false }
    for (const proxy of runningProxies(ctx)) {
      try {
        const m = await measure(ctx, proxy.proc.pid, () =>
          runStream({
            url: proxyUrl(ctx, proxy.name, direction === 'down' ? paths.download : paths.upload), direction, file: join(ctx.topo.dir, 'download.bin'),
            bytes: streamBytes, cert: pki.clientCert, key: pki.clientKey, ca: pki.caCert, cpus: ctx.cpus.clientCpus,
          }))
        record(ctx, rate, proxy.name, m.result / MB)
        record(ctx, growth, proxy.name, (m.rssPeakBytes - m.rssFirstBytes) / MB)
        ctx.log(`  ${proxy.name}: ${name} ${Math.round(m.result / MB)} MB/s, RSS +${((m.rssPeakBytes - m.rssFirstBytes) / MB).toFixed(1)} MB`)
      } catch (err) {
        record(ctx, rate, proxy.name, 0, (err as Error).message.split('\n')[0])
      }
    }
  }
}
