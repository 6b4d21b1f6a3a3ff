/**
 * Checks what the schema cannot see field by field: references between
 * sections resolve, names are unique, settings that can never take effect
 * are refused, and referenced files and variables can be read. Runs after
 * validation on the typed config; every issue names the path of the node at
 * fault so the loader can point at its line.
 *
 * Settings that could never apply are errors, not warnings: an operator who
 * writes `allowAnonymous: true` expects a public route, and a gateway that
 * quietly refuses everyone instead is a config bug found in production.
 */
import type { ConfigIssue } from './issues.js'
import { findReferences } from './references.js'
import { configSchema } from './schema/index.js'
import { minWebhookSecretLength as MIN_WEBHOOK_SECRET_LENGTH } from './schema/gateway.js'
import type { Config, ListenerConfig, RouteConfig } from './schema/index.js'
import { SourceError, readPem, readSecret } from './secrets.js'
import type { SourceContext } from './secrets.js'

type Path = (string | number)[]

/**
 * All cross-reference problems of a validated config, in document order per
 * section. With `source`, also reads every `{ file }` and `{ env }` reference
 * (contents are never put into a message); without it (e.g. checking a config
 * meant for another host), files are not looked at.
 */
export function checkConfig(config: Config, source?: SourceContext): ConfigIssue[] {
  const issues: ConfigIssue[] = []
  const report = (path: Path, message: string) => issues.push({ path, message })
  checkListeners(config, report)
  checkUpstreams(config, report)
  checkRoutes(config, report)
  if (source) {
    checkReferences(config, source, report)
    checkWebhookSecret(config, source, report)
  }
  return issues
}

type Report = (path: Path, message: string) => void

/** Hosts that bind every address, so they collide with any host on the same port. */
const wildcardHosts = new Set(['', '0.0.0.0', '::', '::0', '0:0:0:0:0:0:0:0'])

function checkListeners(config: Config, report: Report): void {
  const names = new Map<string, number>()
  const bound: { host: string; port: number; index: number }[] = []
  config.listeners.forEach((listener, i) => {
    const first = names.get(listener.name)
    if (first !== undefined) report(['listeners', i, 'name'], `duplicate listener name "${listener.name}" (first at listeners.${first})`)
    else names.set(listener.name, i)

    const host = listener.host.toLowerCase()
    if (listener.port !== 0) {
      const clash = bound.find((b) => b.port === listener.port && (b.host === host || wildcardHosts.has(b.host) || wildcardHosts.has(host)))
      if (clash) {
        report(['listeners', i, 'port'], `port ${listener.port} on "${listener.host}" overlaps listener "${config.listeners[clash.index]!.name}" (listeners.${clash.index})`)
      } else {
        bound.push({ host, port: listener.port, index: i })
      }
    }

    const auth = listener.tls.clientAuth
    const authPath: Path = ['listeners', i, 'tls', 'clientAuth']
    if (auth.mode !== 'none' && auth.trustBundle.length === 0) {
      report([...authPath, 'trustBundle'], `clientAuth mode "${auth.mode}" needs a trustBundle: the CA certificates that client certificates must chain to`)
    }
    if (auth.mode === 'none' && auth.perServerName.length > 0) {
      report([...authPath, 'perServerName'], 'perServerName has no effect with clientAuth mode "none": no client certificate is asked for')
    }

    const served = new Map<string, number>()
    listener.tls.certificates.forEach((cert, c) => {
      cert.serverNames.forEach((serverName, n) => {
        const owner = served.get(serverName)
        if (owner !== undefined && owner !== c) {
          report(['listeners', i, 'tls', 'certificates', c, 'serverNames', n], `server name "${serverName}" is already served by certificates.${owner}`)
        } else {
          served.set(serverName, c)
        }
      })
    })
  })
}

function checkUpstreams(config: Config, report: Report): void {
  for (const [name, upstream] of Object.entries(config.upstreams)) {
    const base: Path = ['upstreams', name]
    const schemes = upstream.targets.map((t) => new URL(t.url).protocol)
    const firstScheme = schemes[0]
    schemes.forEach((scheme, j) => {
      if (scheme !== firstScheme) {
        report([...base, 'targets', j, 'url'], `all targets of an upstream must use one scheme; targets.0 uses ${firstScheme}// and this one ${scheme}//`)
      }
    })
    if (upstream.tls && firstScheme !== 'https:') {
      report([...base, 'tls'], 'tls applies only to https:// targets; these use http://')
    }
    const active = upstream.healthCheck.active
    if (active && active.timeout >= active.interval) {
      report([...base, 'healthCheck', 'active', 'timeout'], 'probe timeout must be shorter than the probe interval')
    }
  }
}

function checkRoutes(config: Config, report: Report): void {
  const listenersByName = new Map<string, ListenerConfig>(config.listeners.map((l) => [l.name, l]))
  const routeNames = new Map<string, number>()
  const matchKeys = new Map<string, number[]>()

  config.routes.forEach((route, i) => {
    const base: Path = ['routes', i]
    const first = routeNames.get(route.name)
    if (first !== undefined) report([...base, 'name'], `duplicate route name "${route.name}" (first at routes.${first})`)
    else routeNames.set(route.name, i)

    if (!Object.hasOwn(config.upstreams, route.upstream)) {
      report([...base, 'upstream'], `unknown upstream "${route.upstream}"; defined: ${list(Object.keys(config.upstreams))}`)
    }
    route.access.identities.forEach((identity, j) => {
      if (!Object.hasOwn(config.identities, identity)) {
        report([...base, 'access', 'identities', j], `unknown identity "${identity}"; defined: ${list(Object.keys(config.identities))}`)
      }
    })
    route.listeners.forEach((listener, j) => {
      if (!listenersByName.has(listener)) {
        report([...base, 'listeners', j], `unknown listener "${listener}"; defined: ${list([...listenersByName.keys()])}`)
      }
    })

    checkStripPrefix(route, base, report)
    if (route.headers.identityAssertion && !config.identityAssertion) {
      report([...base, 'headers', 'identityAssertion'], 'needs the top-level identityAssertion section (issuer and signing key)')
    }
    checkAccessCanApply(route, base, servedOn(route, config.listeners, listenersByName), report)

    const key = matchKey(route)
    const earlier = matchKeys.get(key) ?? []
    const clash = earlier.find((e) => overlaps(config.routes[e]!, route))
    if (clash !== undefined) {
      report([...base, 'match'], `same hosts and path as route "${config.routes[clash]!.name}" (routes.${clash}) on the same listeners and methods; neither would be more specific`)
    }
    matchKeys.set(key, [...earlier, i])
  })
}

/**
 * `stripPrefix` must remove whole leading segments of the matched prefix, so
 * every request the route matches loses exactly that text: with prefix
 * "/api/v1", "/api" and "/api/v1" are fine, "/ap" is not (it would forward "i/v1").
 */
function checkStripPrefix(route: RouteConfig, base: Path, report: Report): void {
  if (route.stripPrefix === undefined) return
  const path = [...base, 'stripPrefix']
  const match = route.match.path
  if (!('prefix' in match)) {
    report(path, `stripPrefix needs a "prefix" path match; this route matches by ${Object.keys(match)[0]}`)
    return
  }
  const strip = route.stripPrefix.replace(/\/+$/, '')
  if (strip === '') {
    report(path, 'stripPrefix "/" removes nothing; drop it')
  } else if (match.prefix !== strip && !match.prefix.startsWith(`${strip}/`)) {
    report(path, `stripPrefix "${route.stripPrefix}" must be the match prefix "${match.prefix}" or whole leading segments of it`)
  }
}

function servedOn(route: RouteConfig, all: readonly ListenerConfig[], byName: ReadonlyMap<string, ListenerConfig>): ListenerConfig[] {
  if (route.listeners.length === 0) return [...all]
  return route.listeners.map((n) => byName.get(n)).filter((l) => l !== undefined)
}

/**
 * Anonymous access needs a listener that lets certificate-less clients
 * finish the handshake; certificate-based access needs one that asks for a
 * certificate. When none of the route's listeners does, the setting is dead.
 */
function checkAccessCanApply(route: RouteConfig, base: Path, listeners: readonly ListenerConfig[], report: Report): void {
  if (listeners.length === 0) return // unknown listeners are reported on their own
  const names = list(listeners.map((l) => l.name))
  const access = route.access
  if (access.allowAnonymous && listeners.every((l) => l.tls.clientAuth.mode === 'required')) {
    report([...base, 'access', 'allowAnonymous'], `can never apply: every listener this route is served on (${names}) has clientAuth mode "required", which refuses clients without a certificate during the handshake`)
  }
  const wantsCert = access.identities.length > 0 || access.allowAnyClientCert
  if (wantsCert && listeners.every((l) => l.tls.clientAuth.mode === 'none')) {
    const field = access.identities.length > 0 ? 'identities' : 'allowAnyClientCert'
    report([...base, 'access', field], `can never apply: every listener this route is served on (${names}) has clientAuth mode "none", which asks for no client certificate`)
  }
}

function matchKey(route: RouteConfig): string {
  const hosts = [...new Set(route.match.hosts)].sort().join(',')
  return `${hosts}|${JSON.stringify(route.match.path)}`
}

function overlaps(a: RouteConfig, b: RouteConfig): boolean {
  const intersects = (x: readonly string[], y: readonly string[]) => x.length === 0 || y.length === 0 || x.some((v) => y.includes(v))
  return intersects(a.listeners, b.listeners) && intersects(a.match.methods, b.match.methods)
}

function checkReferences(config: Config, source: SourceContext, report: Report): void {
  for (const ref of findReferences(configSchema, config)) {
    const where = [...ref.path, Object.keys(ref.source)[0]!]
    try {
      if (ref.kind === 'pem') readPem(ref.source, source)
      else if (readSecret(ref.source, source) === '') report(where, 'the secret is empty')
    } catch (err) {
      if (!(err instanceof SourceError)) throw err
      report(where, err.message)
    }
  }
}

/** A short HMAC secret is refused here, at file:line:col, not discovered at the first alert the webhook fails to send. */
function checkWebhookSecret(config: Config, source: SourceContext, report: Report): void {
  const webhook = config.expiryMonitoring.webhook
  if (!webhook) return
  try {
    const length = readSecret(webhook.secret, source).length
    if (length > 0 && length < MIN_WEBHOOK_SECRET_LENGTH) {
      report(['expiryMonitoring', 'webhook', 'secret', Object.keys(webhook.secret)[0]!], `the webhook secret has ${length} characters; at least ${MIN_WEBHOOK_SECRET_LENGTH} are required`)
    }
  } catch (err) {
    if (!(err instanceof SourceError)) throw err // unreadable: already reported by checkReferences
  }
}

function list(names: readonly string[]): string {
  if (names.length === 0) return '(none)'
  const shown = names.slice(0, 10).map((n) => `"${n}"`).join(', ')
  return names.length > 10 ? `${shown}, ...` : shown
}
