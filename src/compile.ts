/**
 * Turns a validated Config into a frozen Runtime: TLS contexts, one router per
 * listener, each route's stage list, upstream pools. All parsing (CIDRs, PEM,
 * patterns, keys) happens here, so a bad value fails as a config issue and
 * never on a request. The stage factories named here are the whole registry.
 */
import type { Config } from './config/schema/index.js'
import { ConfigError, type ConfigIssue } from './config/issues.js'
import type { SourceContext } from './config/secrets.js'
import type { Clock } from './shared/clock.js'
import type { Registry } from './observability/metrics.js'
import type { Logger } from './shared/log.js'
import type { Stage } from './proxy/context.js'
import type { CompiledRoute } from './proxy/compiled-route.js'
import { orderStages, type StageName } from './proxy/pipeline.js'
import { compileRouter, type Router } from './proxy/router.js'
import { compileIdentityMatchers } from './proxy/identity-match.js'
import { ipFilter } from './proxy/stages/ip-filter.js'
import { mtlsAuthn } from './proxy/stages/authn/mtls.js'
import { authz } from './proxy/stages/authz.js'
import { compileHeaderPolicy } from './proxy/upstream-headers.js'
import { IdentityAssertionSigner } from './proxy/identity-assertion.js'
import { compileListenerTls, type ListenerTls } from './proxy/tls/listener-tls.js'
import { createUpstream, type Upstream } from './proxy/upstream/upstream.js'
import type { ListenerConfig } from './config/schema/listeners.js'
import { CrlParserPool } from './proxy/tls/revocation/crl-parser-pool.js'
import { compileListenerRevocation, type ListenerRevocation } from './proxy/tls/revocation/listener-revocation.js'

/** The public JWKS of the identity assertion signer, served on every listener. */
export interface JwksEndpoint {
  readonly path: string
  /** Serialised once per config version. */
  readonly body: string
}

/** Per-listener compiled state; the listener's server reads it at each request. */
export interface ListenerRuntime {
  readonly config: ListenerConfig
  readonly tls: ListenerTls
  readonly router: Router<CompiledRoute>
  readonly paths: Config['paths']
  readonly jwks: JwksEndpoint | undefined
  /** Revocation checking for partners' own CAs (CRL, OCSP); undefined when no trust bundle has a `revocation` block. */
  readonly revocation: ListenerRevocation | undefined
}

/** Everything a request needs, built once per config version. Never mutated after compile. */
export interface Runtime {
  /** Increases by one with each applied config. */
  readonly generation: number
  readonly config: Config
  readonly listeners: ReadonlyMap<string, ListenerRuntime>
  readonly upstreams: ReadonlyMap<string, Upstream>
  readonly assertion: IdentityAssertionSigner | undefined
  /** The process's CRL worker threads, carried from version to version. */
  readonly crlParsers: CrlParserPool
}

export interface CompileDeps {
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  /** Where listeners and checkers register their metrics (`observability/metrics.ts`); tests that do not look may leave it out. */
  readonly metrics?: Registry
}

/** A route's parts that do not depend on the listener it is served on. */
interface RouteParts {
  readonly index: number
  readonly route: Config['routes'][number]
  readonly upstream: Upstream
  readonly stages: CompiledRoute['stages']
}

/**
 * Builds a Runtime. Throws ConfigError (with config paths) when a part cannot
 * be built; anything already created (pools, timers) is destroyed first, so a
 * failed compile leaks nothing and the running config stays. `previous` is the
 * running version: state that must survive a reload (a generated assertion
 * key, intermediate CAs learned from handshakes) is carried over from it.
 */
export async function compileRuntime(config: Config, generation: number, deps: CompileDeps, previous?: Runtime): Promise<Runtime> {
  const upstreams = new Map<string, Upstream>()
  try {
    const issues: ConfigIssue[] = []
    const attempt = <T>(path: (string | number)[], build: () => T): T | undefined => {
      try {
        return build()
      } catch (err) {
        if (err instanceof ConfigError) issues.push(...err.issues)
        else issues.push({ path, message: (err as Error).message })
        return undefined
      }
    }

    for (const [name, cfg] of Object.entries(config.upstreams)) {
      const upstream = attempt(['upstreams', name], () => createUpstream(name, cfg, deps))
      if (upstream) upstreams.set(name, upstream)
    }

    const assertion = config.identityAssertion
      ? await IdentityAssertionSigner.create(config.identityAssertion, { ...deps, previous: previous?.assertion }).catch((err: unknown) => {
          issues.push({ path: ['identityAssertion'], message: (err as Error).message })
          return undefined
        })
      : undefined
    const jwks = assertion && config.identityAssertion
      ? Object.freeze({ path: config.identityAssertion.jwksPath, body: JSON.stringify(assertion.jwks()) })
      : undefined

    const matchIdentity = attempt(['identities'], () => compileIdentityMatchers(config.identities))

    const routeParts: RouteParts[] = []
    config.routes.forEach((route, index) => {
      const upstream = upstreams.get(route.upstream)
      if (!upstream || !matchIdentity) return
      const stages: Partial<Record<StageName, Stage>> = {}
      const { access } = route
      if (access.ipAllow.length > 0 || access.ipDeny.length > 0) {
        stages.ip_filter = attempt(['routes', index, 'access'], () => ipFilter({ allow: access.ipAllow, deny: access.ipDeny }))
      }
      stages.authn = mtlsAuthn({ allowAnonymous: access.allowAnonymous, match: matchIdentity })
      stages.authz = authz({ identities: access.identities, allowAnyClientCert: access.allowAnyClientCert, allowAnonymous: access.allowAnonymous })
      routeParts.push({ index, route, upstream, stages: orderStages(stages) })
    })

    const listeners = new Map<string, ListenerRuntime>()
    const crlParsers = previous?.crlParsers ?? new CrlParserPool()
    const revocationLoads: Promise<void>[] = []
    config.listeners.forEach((l, i) => {
      const tls = attempt(['listeners', i, 'tls'], () =>
        compileListenerTls(l, { ...deps, path: ['listeners', i], previous: previous?.listeners.get(l.name)?.tls }),
      )
      // Header policies are per listener: which peers are trusted proxies is a listener setting.
      const entries = routeParts
        .filter(({ route }) => route.listeners.length === 0 || route.listeners.includes(l.name))
        .map(({ index, route, upstream, stages }) => {
          const headerPolicy = attempt(['routes', index, 'headers'], () =>
            compileHeaderPolicy(route.headers, { trustedProxies: l.trustedProxies, assertion, upstreamName: route.upstream }),
          )
          const compiled: CompiledRoute | undefined = headerPolicy && Object.freeze({
            name: route.name,
            upstream,
            stages,
            headerPolicy,
            stripPrefix: route.stripPrefix,
            maxBodyBytes: route.limits.maxBodySize,
            maxUrlLength: route.limits.maxUrlLength,
            responseHeadersTimeoutMs: route.timeouts.responseHeaders,
            idleTimeoutMs: route.timeouts.idle,
            totalTimeoutMs: route.timeouts.total,
            retries: route.retries.attempts,
          })
          return compiled && { route: compiled, index, listeners: [], hosts: route.match.hosts, path: route.match.path, methods: route.match.methods }
        })
        .filter((e): e is NonNullable<typeof e> => e !== undefined)
      const router = attempt(['listeners', i], () => compileRouter(entries))
      const revocation = tls && attempt(['listeners', i, 'tls', 'clientAuth'], () =>
        compileListenerRevocation(l, { ...deps, tls, pool: crlParsers, path: ['listeners', i], previous: previous?.listeners.get(l.name)?.revocation }),
      )
      // CRL files are parsed off the event loop; their issues join the others before anything is returned.
      if (revocation) {
        revocationLoads.push(
          revocation.loaded.catch((err: unknown) => {
            if (err instanceof ConfigError) issues.push(...err.issues)
            else issues.push({ path: ['listeners', i], message: (err as Error).message })
          }),
        )
      }
      if (tls && router) listeners.set(l.name, Object.freeze({ config: l, tls, router, paths: config.paths, jwks, revocation }))
    })
    await Promise.all(revocationLoads)

    if (issues.length > 0) throw new ConfigError(dedupe(issues))
    return Object.freeze({ generation, config, listeners, upstreams, assertion, crlParsers })
  } catch (err) {
    await Promise.allSettled([...upstreams.values()].map((u) => u.destroy()))
    throw err
  }
}

/** One route conflict is found once per listener it is served on; report it once. */
function dedupe(issues: readonly ConfigIssue[]): ConfigIssue[] {
  const seen = new Set<string>()
  return issues.filter((issue) => {
    const key = `${issue.path.join('.')}\u0000${issue.message}`
    if (seen.has(key)) return false
    seen.add(key)
    return true
  })
}
