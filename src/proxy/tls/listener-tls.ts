/**
 * Compiles a listener's `tls:` config into what the listener needs to
 * terminate TLS 1.2/1.3 with client certificates: server options, one
 * SecureContext per (certificate, trust bundle) a server name can reach, and
 * the per-connection verification.
 *
 * How the listener uses it:
 *   let current = compileListenerTls(cfg, { source, clock, path: ['listeners', i] })
 *   const server = http2.createSecureServer({ ...current.serverOptions, SNICallback: makeSniCallback(() => current), allowHTTP1: true })
 *   server.on('secureConnection', (s) => { const v = current.verifyPeer(s); ... })
 *   rotator = new TicketKeyRotator({ intervalMs: cfg.tls.ticketKeyRotation, apply: (k) => server.setTicketKeys(k) }); rotator.start()
 * On reload:
 *   const next = compileListenerTls(newCfg, { source, clock, path, previous: current })   // throws ConfigError: keep current
 *   server.setSecureContext(next.defaultContextOptions); rotator.rotate(); current = next
 * `setSecureContext` keeps established connections; the new context has a new
 * session-id context (derived from the trust config) and `rotate()` a new
 * ticket key, so sessions from before the reload do a full handshake. verifyPeer
 * does not depend on that: it re-checks resumed sessions against `current`.
 *
 * Decisions (secure defaults a gateway at the edge should have):
 * - `rejectUnauthorized: false` with `requestCert`: OpenSSL never aborts the
 *   handshake for a certificate; verifyPeer decides, so every refusal has a
 *   reason code (and `rejectWithProblem` can answer with it).
 * - SSL_OP_NO_RENEGOTIATION (client-initiated renegotiation is a DoS lever and
 *   a source of identity confusion), SSL_OP_NO_COMPRESSION (CRIME),
 *   honorCipherOrder, TLS 1.3 as the maximum, ciphers and groups from config.
 * - Session tickets are turned off when TLS 1.2 is allowed and some names have
 *   their own trust bundle: Node 20 does not report the server name of a
 *   resumed TLS 1.2 session, so its trust bundle could not be chosen; refusing
 *   such a session would fail the client instead of falling back. TLS 1.3-only
 *   listeners (the default) keep resumption.
 * - A client sending no SNI, or (on resumption, where Node runs no SNI callback)
 *   an unknown one, while unknownServerName is "reject", is refused by
 *   verifyPeer with misdirected_request: Node cannot fail those handshakes.
 * - handshakeTimeout is the listener's (`server.handshakeTimeout`); nothing here.
 */
import { constants, createHash } from 'node:crypto'
import tls from 'node:tls'
import type { SecureContext, SecureContextOptions, TLSSocket, TlsOptions } from 'node:tls'
import { ConfigError, type ConfigIssue } from '../../config/issues.js'
import type { ListenerConfig } from '../../config/schema/listeners.js'
import type { SourceContext } from '../../config/secrets.js'
import type { Clock } from '../../shared/clock.js'
import { loadServerCertificate, loadTrustBundle, type ServerCertMaterial } from './material.js'
import { stapleTargetFor, type StapleTarget } from './ocsp-stapling.js'
import { ServerNameTable, representative } from './server-names.js'
import { IntermediatePool, type TrustGroup } from './trust.js'
import { verifyPeer, type PeerPolicy, type PeerVerdict } from './verify-peer.js'

/** Re-exported so the listener takes its whole TLS API from this module. */
export { TicketKeyRotator, rotatingTicketKeys, type TicketKeyRotatorOptions, type TicketKeySource, type TicketKeySourceFactory } from './ticket-keys.js'
/** The result of verifyPeer: an Identity (or anonymous) or a Denial. */
export type { PeerVerdict } from './verify-peer.js'

/** A listener's compiled TLS: immutable; a reload compiles a new one. */
export interface ListenerTls {
  /**
   * Spread into `http2.createSecureServer()` / `tls.createServer()`: the
   * default certificate and trust, versions, ciphers, groups, secureOptions,
   * session settings, requestCert, `rejectUnauthorized: false`, and an
   * SNICallback bound to THIS ListenerTls (replace it with
   * `makeSniCallback(() => current)` to follow reloads). No ticketKeys: see TicketKeyRotator.
   */
  readonly serverOptions: TlsOptions
  /** For `server.setSecureContext()` on reload: the default certificate, trust and settings. */
  readonly defaultContextOptions: SecureContextOptions
  /**
   * The SecureContext for a client's SNI name (any case): its certificate and
   * the trust bundle for that name. Undefined when no certificate serves the
   * name and unknownServerName is "reject": the handshake must fail.
   */
  contextFor(serverName: string | undefined): SecureContext | undefined
  /**
   * Once per connection at 'secureConnection', for full AND resumed
   * handshakes: the verified Identity (undefined when the mode allows no
   * certificate and none was sent) or a Denial with a reason code and detail.
   */
  verifyPeer(socket: TLSSocket): PeerVerdict
  /**
   * Which trust applies to a server name (SNI or Host, any case): equal keys
   * mean the same anchors. A request whose Host has a different key than its
   * SNI would reach names whose trust did not verify the client.
   */
  trustKeyFor(serverName: string | undefined): string
  /** The trust bundle that applies to a server name (SNI, any case; undefined = none sent): what verifyPeer checked a client against. */
  trustGroupFor(serverName: string | undefined): TrustGroup | undefined
  /** Whether session tickets are issued (config, unless turned off for per-name trust with TLS 1.2; see module doc). */
  readonly hasSessionTickets: boolean
  /** Intermediates learned from verified handshakes; carried to the next compile via `deps.previous`. */
  readonly intermediates: IntermediatePool
  /** Server certificates to keep an OCSP staple for (empty when `ocspStapling` is off); see ocsp-stapling.ts. */
  readonly ocspTargets: readonly StapleTarget[]
}

/** What compileListenerTls needs besides the config. */
export interface ListenerTlsDeps {
  readonly source: SourceContext
  readonly clock: Clock
  /** Config path of the listener (e.g. ["listeners", 0]); issue paths start with it. Default: []. */
  readonly path?: readonly (string | number)[]
  /** The ListenerTls being replaced: its learned intermediates are kept, so sessions resumed after the swap can rebuild their path. */
  readonly previous?: ListenerTls
}

/** `code` of the error the SNI callback fails a handshake with; map it to misdirected_request when logging. */
export const unknownServerNameCode = 'ERR_PORTCULLIS_UNKNOWN_SERVER_NAME'

/**
 * An SNICallback that asks whichever ListenerTls `get()` returns now, so a
 * reload takes effect for the next handshake. One Error object is made per
 * callback, not per refused handshake: scanners sending random names should
 * not cost a stack trace each.
 */
export function makeSniCallback(get: () => ListenerTls): NonNullable<TlsOptions['SNICallback']> {
  const refusal = Object.assign(new Error('no certificate for the requested server name'), { code: unknownServerNameCode })
  return (servername, cb) => {
    let context: SecureContext | undefined
    try {
      context = get().contextFor(servername)
    } catch (err) {
      cb(err as Error)
      return
    }
    if (context) cb(null, context)
    else cb(refusal)
  }
}

const baseSecureOptions = constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE

/**
 * Key-exchange groups accepted in `ecdhCurves`. An allow-list rather than an
 * OpenSSL probe: Node 20's createSecureContext leaves an error on OpenSSL's
 * queue for an unknown group, and the next key parse (the next reload) fails
 * with it. Also keeps out weak or exotic curves.
 */
const keyExchangeGroups = new Set(['X25519', 'X448', 'P-256', 'P-384', 'P-521', 'prime256v1', 'secp384r1', 'secp521r1', 'ffdhe2048', 'ffdhe3072', 'ffdhe4096'])

/** Checks the cipher list alone first, so an error names the right field. */
function probe(options: SecureContextOptions, path: readonly (string | number)[], what: string, issues: ConfigIssue[]): void {
  try {
    tls.createSecureContext(options)
  } catch (err) {
    const code = (err as { code?: string }).code
    issues.push({ path, message: `OpenSSL rejects this ${what}${code ? ` (${code})` : ''}` })
  }
}

/** Compiles `cfg.tls`. Throws ConfigError listing every problem found, each at its config path. */
export function compileListenerTls(cfg: ListenerConfig, deps: ListenerTlsDeps): ListenerTls {
  const t = cfg.tls
  const auth = t.clientAuth
  const base = [...(deps.path ?? []), 'tls']
  const issues: ConfigIssue[] = []

  const certs = t.certificates.map((c, i) => loadServerCertificate(c, deps.source, [...base, 'certificates', i], issues))
  const ocspTargets: StapleTarget[] = []
  certs.forEach((c, i) => {
    if (!c) return
    const { target, issue } = stapleTargetFor(c.leaf, c.issuer, t.ocspStapling)
    if (issue) issues.push({ path: [...base, 'certificates', i, 'cert'], message: issue })
    if (target) ocspTargets.push(target)
  })

  let defaultGroup: TrustGroup | undefined
  const overrideGroups: (TrustGroup | undefined)[] = []
  if (auth.mode === 'none') {
    if (auth.trustBundle.length > 0 || auth.perServerName.length > 0) {
      issues.push({ path: [...base, 'clientAuth', 'mode'], message: 'mode "none" asks for no client certificate, so the trust bundles would be unused; remove them or set mode' })
    }
  } else {
    if (auth.trustBundle.length === 0) {
      issues.push({ path: [...base, 'clientAuth', 'trustBundle'], message: `a trust bundle is required when mode is "${auth.mode}"` })
    } else defaultGroup = loadTrustBundle(auth.trustBundle, deps.source, [...base, 'clientAuth', 'trustBundle'], issues)
    auth.perServerName.forEach((o, i) => {
      overrideGroups.push(loadTrustBundle(o.trustBundle, deps.source, [...base, 'clientAuth', 'perServerName', i, 'trustBundle'], issues))
    })
  }

  const certTable = new ServerNameTable(t.certificates.map((c, i) => ({ patterns: c.serverNames, value: i })))
  for (const d of certTable.duplicates) {
    issues.push({ path: [...base, 'certificates', d.index, 'serverNames', d.position], message: `${d.pattern} is listed for more than one certificate` })
  }
  // Trust groups: 0 is the default bundle, i + 1 is perServerName[i].
  const trustTable = new ServerNameTable(auth.perServerName.map((o, i) => ({ patterns: o.serverNames, value: i + 1 })))
  for (const d of trustTable.duplicates) {
    issues.push({ path: [...base, 'clientAuth', 'perServerName', d.index, 'serverNames', d.position], message: `${d.pattern} has more than one trust bundle` })
  }
  const defaultCert = t.unknownServerName === 'default' ? 0 : undefined
  const certFor = (name: string | undefined) => (name === undefined ? defaultCert : certTable.lookup(name) ?? defaultCert)
  const groupFor = (name: string | undefined) => (name === undefined ? 0 : trustTable.lookup(name) ?? 0)
  if (defaultCert === undefined) {
    auth.perServerName.forEach((o, i) =>
      o.serverNames.forEach((name, j) => {
        if (certFor(representative(name)) === undefined) {
          issues.push({ path: [...base, 'clientAuth', 'perServerName', i, 'serverNames', j], message: `no certificate serves ${name} and unknownServerName is "reject", so this trust bundle is never used` })
        }
      }),
    )
  }

  const settings = { ciphers: t.ciphers, minVersion: t.minVersion, maxVersion: 'TLSv1.3' } as const
  // An empty list would make Node fall back to its own defaults, which include CBC suites.
  if (t.ciphers.trim() === '') issues.push({ path: [...base, 'ciphers'], message: 'the cipher list is empty' })
  else probe(settings, [...base, 'ciphers'], 'cipher list', issues)
  const unknownGroups = t.ecdhCurves.split(':').filter((g) => !keyExchangeGroups.has(g))
  if (unknownGroups.length > 0) {
    issues.push({ path: [...base, 'ecdhCurves'], message: `unsupported group ${unknownGroups.join(', ')}; use ${[...keyExchangeGroups].join(', ')}` })
  }

  if (issues.length > 0) throw new ConfigError(issues)

  const groups = [defaultGroup, ...overrideGroups]
  const hasSessionTickets = t.sessionTickets && !(auth.mode !== 'none' && auth.perServerName.length > 0 && t.minVersion === 'TLSv1.2')
  // Changes whenever the trust does, so OpenSSL refuses to resume (TLS 1.3) sessions made under other trust.
  const sessionIdContext = createHash('sha256')
    .update(JSON.stringify({ listener: cfg.name, mode: auth.mode, depth: auth.maxChainDepth, groups: groups.map((g) => g?.id ?? null), names: auth.perServerName.map((o) => o.serverNames) }))
    .digest('hex')
    .slice(0, 32) // SSL_MAX_SID_CTX_LENGTH
  const common: SecureContextOptions = {
    ...settings,
    ecdhCurve: t.ecdhCurves,
    honorCipherOrder: true,
    secureOptions: baseSecureOptions | (hasSessionTickets ? 0 : constants.SSL_OP_NO_TICKET),
    sessionIdContext,
    sessionTimeout: Math.max(1, Math.floor(t.sessionTimeout / 1000)), // Node takes seconds
  }
  const optionsFor = (cert: ServerCertMaterial, group: TrustGroup | undefined): SecureContextOptions => ({
    ...common,
    cert: cert.certPem,
    key: cert.keyPem,
    ...(cert.passphrase !== undefined ? { passphrase: cert.passphrase } : {}),
    ...(group ? { ca: [...group.pems] } : {}),
  })

  // One context per (certificate, trust group) that some name reaches.
  const contexts = new Map<string, SecureContext>()
  const reachable = [undefined, ...certTable.patterns().map(([p]) => representative(p)), ...trustTable.patterns().map(([p]) => representative(p))]
  for (const name of reachable) {
    const c = certFor(name)
    const g = groupFor(name)
    const key = `${c}/${g}`
    if (c === undefined || contexts.has(key)) continue
    try {
      contexts.set(key, tls.createSecureContext(optionsFor(certs[c]!, groups[g])))
    } catch (err) {
      const code = (err as { code?: string }).code
      throw new ConfigError([{ path: [...base, 'certificates', c], message: `OpenSSL rejects this certificate and key${code ? ` (${code})` : ''}` }])
    }
  }

  const policy: PeerPolicy = {
    mode: auth.mode,
    maxChainDepth: auth.maxChainDepth,
    maxLeafValidity: auth.maxLeafValidity,
    clock: deps.clock,
    pool: deps.previous?.intermediates ?? new IntermediatePool(),
    route: (name) => ({ group: groups[groupFor(name)], hasCertificate: certFor(name) !== undefined }),
  }

  const defaultContextOptions = Object.freeze(optionsFor(certs[0]!, defaultGroup))
  const self: ListenerTls = {
    defaultContextOptions,
    serverOptions: Object.freeze({
      ...defaultContextOptions,
      requestCert: auth.mode !== 'none',
      rejectUnauthorized: false,
      SNICallback: makeSniCallback(() => self),
    }),
    contextFor(serverName) {
      const name = serverName?.toLowerCase()
      const c = certFor(name)
      return c === undefined ? undefined : contexts.get(`${c}/${groupFor(name)}`)
    },
    verifyPeer: (socket) => verifyPeer(socket, policy),
    trustKeyFor: (serverName) => groups[groupFor(serverName?.toLowerCase())]?.id ?? 'none',
    trustGroupFor: (serverName) => groups[groupFor(serverName?.toLowerCase())],
    hasSessionTickets,
    intermediates: policy.pool,
    ocspTargets,
  }
  return Object.freeze(self)
}
