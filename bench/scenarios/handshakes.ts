/**
 * New mTLS handshakes per second: wrk with `Connection: close` on 20
 * connections, so each request is one full handshake (client certificate
 * sent and verified) plus one proxied request. TLS 1.3 and 1.2, ECDSA P-256
 * and RSA 2048 end to end (see pki.ts). Then resumed sessions (TLS 1.3
 * tickets, TLS 1.2 tickets or session ids, whatever the proxy offers).
 *
 * The shim's counters make the figures honest: a "new" figure with any
 * resumed handshake, or a "resumed" one where fewer than 40% resumed, is
 * not recorded (a note says why); the resumed share is its own figure. (A
 * Node server issues no new TLS 1.3 ticket on a resumed connection, and its
 * tickets resumed once each here: Portcullis and the naive floor resume every
 * other TLS 1.3 reconnect of a client that keeps one session, nginx and
 * HAProxy nearly all.)
 */
import { runWrk } from '../clients/wrk.js'
import { paths } from '../topology.js'
import { checkClientCore, measure, proxyUrl, record, runningProxies, type ScenarioContext } from './context.js'

interface Variant {
  readonly id: string
  readonly label: string
  readonly tls: '1.2' | '1.3'
  readonly keyType: 'ec' | 'rsa'
  readonly resume: boolean
}

const variants: readonly Variant[] = [
  { id: 'tls13-ecdsa', label: 'TLS 1.3 ECDSA', tls: '1.3', keyType: 'ec', resume: false },
  { id: 'tls12-ecdsa', label: 'TLS 1.2 ECDSA', tls: '1.2', keyType: 'ec', resume: false },
  { id: 'tls13-rsa', label: 'TLS 1.3 RSA', tls: '1.3', keyType: 'rsa', resume: false },
  { id: 'tls12-rsa', label: 'TLS 1.2 RSA', tls: '1.2', keyType: 'rsa', resume: false },
  { id: 'tls13-ecdsa-resumed', label: 'TLS 1.3 ECDSA resumed', tls: '1.3', keyType: 'ec', resume: true },
  { id: 'tls12-ecdsa-resumed', label: 'TLS 1.2 ECDSA resumed', tls: '1.2', keyType: 'ec', resume: true },
]
/** Quick mode: the figure the targets name. */
const quickVariants = new Set(['tls13-ecdsa'])

export async function handshakes(ctx: ScenarioContext): Promise<void> {
  for (const v of variants) {
    if (ctx.isQuick && !quickVariants.has(v.id)) continue
    const rate = { key: `handshakes.${v.id}`, scenario: 'handshakes', label: `handshakes/s ${v.label}`, unit: '/s', isHigherBetter: true }
    const cpu = { key: `handshakes.${v.id}.cpu`, scenario: 'handshakes', label: `CPU/handshake ${v.label}`, unit: 'µs', isHigherBetter: false }
    const share = { key: `handshakes.${v.id}.share`, scenario: 'handshakes', label: `resumed share ${v.label}`, unit: '%', isHigherBetter: true }
    const pki = ctx.topo.pki[v.keyType]
    for (const proxy of runningProxies(ctx)) {
      const m = await measure(ctx, proxy.proc.pid, () =>
        runWrk({
          url: proxyUrl(ctx, proxy.name, paths.full, v.keyType), connections: 20, threads: 1, durationS: ctx.durations.handshakeS,
          preload: ctx.preload, cert: pki.clientCert, key: pki.clientKey, cpus: ctx.cpus.clientCpus, tlsMax: v.tls, resume: v.resume, closeEachRequest: true,
        }))
      const r = m.result
      const resumedShare = r.handshakes > 0 ? r.resumed / r.handshakes : 0
      const invalid =
        r.errors > 0 ? `${r.errors} errors or non-2xx answers`
        : r.handshakes === 0 ? 'no handshake finished'
        : !v.resume && r.resumed > 0 ? `${r.resumed} of ${r.handshakes} handshakes resumed`
        : v.resume && resumedShare < 0.4 ? `only ${r.resumed} of ${r.handshakes} handshakes resumed`
        : undefined
      const perSecond = r.handshakes / (r.durationUs / 1e6)
      record(ctx, rate, proxy.name, perSecond, invalid)
      if (!v.resume) record(ctx, cpu, proxy.name, m.cpuMicros / r.handshakes, invalid)
      else record(ctx, share, proxy.name, resumedShare * 100)
      checkClientCore(ctx, v.label, m.clientCoreBusy)
      ctx.log(`  ${proxy.name}: ${v.label}: ${Math.round(perSecond)} handshakes/s (${r.resumed}/${r.handshakes} resumed)`)
    }
  }
}
