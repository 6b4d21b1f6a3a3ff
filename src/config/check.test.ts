import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { checkConfig } from './check.js'
import { configSchema } from './schema/index.js'
import type { Config } from './schema/index.js'
import { maxSourceFileBytes } from './secrets.js'

const pem = { pem: '-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n' }

type Input = Record<string, unknown>

function listener(name: string, port: number, mode: string, extra: Input = {}): Input {
  return {
    name,
    port,
    tls: { certificates: [{ cert: pem, key: pem }], clientAuth: { mode, trustBundle: mode === 'none' ? [] : [pem] } },
    ...extra,
  }
}

function route(name: string, extra: Input = {}): Input {
  return { name, match: { path: { prefix: `/${name}` } }, access: { allowAnyClientCert: true }, upstream: 'app', ...extra }
}

function build(overrides: Input = {}): Config {
  return configSchema.parse({
    version: 1,
    listeners: [listener('edge', 8443, 'required')],
    upstreams: { app: { targets: [{ url: 'http://127.0.0.1:9000' }] } },
    routes: [],
    ...overrides,
  })
}

/** Paths of the issues, joined with dots, for compact assertions. */
function paths(config: Config): string[] {
  return checkConfig(config).map((i) => i.path.join('.'))
}

describe('checkConfig references', () => {
  test('accepts a config whose references all resolve', () => {
    const config = build({
      identities: { partner: [{ dns: 'partner.example.com' }] },
      routes: [route('a', { listeners: ['edge'], access: { identities: ['partner'] } })],
    })
    assert.deepEqual(checkConfig(config), [])
  })

  test('reports a route naming an undefined upstream at its upstream key', () => {
    assert.deepEqual(paths(build({ routes: [route('a', { upstream: 'missing' })] })), ['routes.0.upstream'])
  })

  test('reports each undefined identity and listener at its list entry', () => {
    const config = build({
      identities: { known: [{ dns: 'k' }] },
      routes: [route('a', { listeners: ['edge', 'ghost'], access: { identities: ['known', 'stranger'] } })],
    })
    assert.deepEqual(paths(config), ['routes.0.access.identities.1', 'routes.0.listeners.1'])
  })

  test('does not take inherited names such as "constructor" for defined ones', () => {
    const config = build({ routes: [route('a', { upstream: 'constructor', access: { identities: ['toString'] } })] })
    assert.deepEqual(paths(config), ['routes.0.upstream', 'routes.0.access.identities.0'])
  })

  test('requires the identityAssertion section when a route asks for assertions', () => {
    const asking = [route('a', { headers: { identityAssertion: true } })]
    assert.deepEqual(paths(build({ routes: asking })), ['routes.0.headers.identityAssertion'])
    assert.deepEqual(paths(build({ routes: asking, identityAssertion: { issuer: 'gw' } })), [])
  })
})

describe('checkConfig names and ports', () => {
  test('reports the second of two listeners with one name', () => {
    const config = build({ listeners: [listener('edge', 1, 'required'), listener('edge', 2, 'required')] })
    assert.deepEqual(paths(config), ['listeners.1.name'])
  })

  test('reports the second of two routes with one name', () => {
    assert.deepEqual(paths(build({ routes: [route('a'), route('b'), { ...route('a'), match: { path: { prefix: '/other' } } }] })), ['routes.2.name'])
  })

  test('refuses one port twice on a host, or beside a wildcard host', () => {
    const same = build({ listeners: [listener('a', 8443, 'required'), listener('b', 8443, 'required')] })
    assert.deepEqual(paths(same), ['listeners.1.port'])
    const wildcard = build({ listeners: [listener('a', 8443, 'required', { host: '0.0.0.0' }), listener('b', 8443, 'required', { host: '10.1.2.3' })] })
    assert.deepEqual(paths(wildcard), ['listeners.1.port'])
    const dualStack = build({ listeners: [listener('a', 8443, 'required', { host: '10.1.2.3' }), listener('b', 8443, 'required', { host: '::' })] })
    assert.deepEqual(paths(dualStack), ['listeners.1.port'])
  })

  test('allows one port on different hosts, and port 0 any number of times', () => {
    const hosts = build({ listeners: [listener('a', 8443, 'required', { host: '10.0.0.1' }), listener('b', 8443, 'required', { host: '10.0.0.2' })] })
    assert.deepEqual(paths(hosts), [])
    const zero = build({ listeners: [listener('a', 0, 'required'), listener('b', 0, 'required')] })
    assert.deepEqual(paths(zero), [])
  })

  test('refuses one server name on two certificates of a listener', () => {
    const l = listener('edge', 8443, 'required')
    const tls = l.tls as Input
    tls.certificates = [
      { cert: pem, key: pem, serverNames: ['a.example.com'] },
      { cert: pem, key: pem, serverNames: ['b.example.com', 'A.example.com'] },
    ]
    assert.deepEqual(paths(build({ listeners: [l] })), ['listeners.0.tls.certificates.1.serverNames.1'])
  })

  test('refuses two routes with the same hosts and path on overlapping listeners and methods', () => {
    const twin = (name: string, methods: string[], listeners: string[] = []) => route(name, { match: { path: { prefix: '/x' }, methods }, listeners })
    const listeners = [listener('edge', 8443, 'required'), listener('other', 8444, 'required')]
    assert.deepEqual(paths(build({ listeners, routes: [twin('a', ['GET']), twin('b', [])] })), ['routes.1.match'])
    assert.deepEqual(paths(build({ listeners, routes: [twin('a', ['GET']), twin('b', ['POST'])] })), [])
    assert.deepEqual(paths(build({ listeners, routes: [twin('a', [], ['edge']), twin('b', [], ['other'])] })), [])
  })
})

describe('checkConfig client authentication', () => {
  test('requires a trust bundle unless mode is none', () => {
    for (const mode of ['required', 'optional']) {
      const l = listener('edge', 8443, mode)
      ;((l.tls as Input).clientAuth as Input).trustBundle = []
      assert.deepEqual(paths(build({ listeners: [l] })), ['listeners.0.tls.clientAuth.trustBundle'], mode)
    }
    assert.deepEqual(paths(build({ listeners: [listener('edge', 8443, 'none')] })), [])
  })

  test('refuses per-name trust on a listener that asks for no certificate', () => {
    const l = listener('edge', 8443, 'none')
    ;((l.tls as Input).clientAuth as Input).perServerName = [{ serverNames: ['a.example.com'], trustBundle: [pem] }]
    assert.deepEqual(paths(build({ listeners: [l] })), ['listeners.0.tls.clientAuth.perServerName'])
  })

  test('refuses allowAnonymous when every listener of the route requires a certificate', () => {
    const anonymous = route('pub', { access: { allowAnonymous: true } })
    assert.deepEqual(paths(build({ routes: [anonymous] })), ['routes.0.access.allowAnonymous'])
    const listeners = [listener('edge', 8443, 'required'), listener('open', 8444, 'optional')]
    assert.deepEqual(paths(build({ listeners, routes: [anonymous] })), [], 'served on an optional listener too')
    assert.deepEqual(paths(build({ listeners, routes: [{ ...anonymous, listeners: ['edge'] }] })), ['routes.0.access.allowAnonymous'])
  })

  test('refuses certificate-based access when every listener of the route asks for none', () => {
    const config = build({
      listeners: [listener('plain', 8443, 'none')],
      identities: { p: [{ dns: 'p' }] },
      routes: [route('a', { access: { identities: ['p'] } }), route('b', { access: { allowAnyClientCert: true } })],
    })
    assert.deepEqual(paths(config), ['routes.0.access.identities', 'routes.1.access.allowAnyClientCert'])
  })
})

describe('checkConfig paths and upstreams', () => {
  test('accepts stripPrefix equal to the prefix or its leading segments', () => {
    for (const [prefix, strip] of [['/api', '/api'], ['/api/v1', '/api'], ['/api/v1', '/api/'], ['/api/', '/api']]) {
      assert.deepEqual(paths(build({ routes: [route('a', { match: { path: { prefix } }, stripPrefix: strip })] })), [], `${prefix} ${strip}`)
    }
  })

  test('refuses stripPrefix without a prefix match, mid-segment, longer than the prefix, or "/"', () => {
    const cases: [Input, string][] = [
      [{ exact: '/api' }, '/api'],
      [{ pattern: '/api/:id' }, '/api'],
      [{ prefix: '/api/v1' }, '/ap'],
      [{ prefix: '/api' }, '/api/v1'],
      [{ prefix: '/api' }, '/'],
    ]
    for (const [path, strip] of cases) {
      assert.deepEqual(paths(build({ routes: [route('a', { match: { path }, stripPrefix: strip })] })), ['routes.0.stripPrefix'], `${JSON.stringify(path)} ${strip}`)
    }
  })

  test('refuses upstream targets with different schemes, at the first odd one', () => {
    const upstreams = { app: { targets: [{ url: 'https://a' }, { url: 'https://b' }, { url: 'http://c' }] } }
    assert.deepEqual(paths(build({ upstreams })), ['upstreams.app.targets.2.url'])
  })

  test('refuses upstream tls settings for http targets', () => {
    const upstreams = { app: { targets: [{ url: 'http://a' }], tls: { minVersion: 'TLSv1.3' } } }
    assert.deepEqual(paths(build({ upstreams })), ['upstreams.app.tls'])
    assert.deepEqual(paths(build({ upstreams: { app: { ...upstreams.app, targets: [{ url: 'https://a' }] } } })), [])
  })

  test('refuses an active health probe timeout not shorter than its interval', () => {
    const upstreams = { app: { targets: [{ url: 'http://a' }], healthCheck: { active: { interval: '2s', timeout: '2s' } } } }
    assert.deepEqual(paths(build({ upstreams })), ['upstreams.app.healthCheck.active.timeout'])
  })
})

describe('checkConfig files and variables', { timeout: 10_000 }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-check-'))
  after(() => rmSync(dir, { recursive: true, force: true }))
  const source = { baseDir: dir, env: { GOOD: 'value', EMPTY: '' } }
  writeFileSync(join(dir, 'ca.pem'), '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
  writeFileSync(join(dir, 'secret.txt'), 'correct horse battery staple\n')
  writeFileSync(join(dir, 'empty.txt'), '\n')
  writeFileSync(join(dir, 'not-pem.txt'), 'just some text\n')

  function withTrust(trustBundle: Input[], passphrase?: Input): Config {
    const l = listener('edge', 8443, 'required')
    ;((l.tls as Input).clientAuth as Input).trustBundle = trustBundle
    if (passphrase) (((l.tls as Input).certificates as Input[])[0]!).passphrase = passphrase
    return build({ listeners: [l] })
  }

  test('reads files relative to the config directory and variables from the given environment', () => {
    assert.deepEqual(checkConfig(withTrust([{ file: 'ca.pem' }], { file: 'secret.txt' }), source), [])
    assert.deepEqual(checkConfig(withTrust([{ file: join(dir, 'ca.pem') }], { env: 'GOOD' }), source), [])
  })

  test('reports missing, non-PEM and non-regular files at the reference', () => {
    const issues = checkConfig(withTrust([{ file: 'nope.pem' }, { file: 'not-pem.txt' }, { file: '.' }]), source)
    assert.deepEqual(
      issues.map((i) => i.path.join('.')),
      [0, 1, 2].map((n) => `listeners.0.tls.clientAuth.trustBundle.${n}.file`),
    )
  })

  test('reports unset and empty variables and empty secret files', () => {
    const unset = checkConfig(withTrust([{ env: 'MISSING' }], { env: 'EMPTY' }), source)
    assert.deepEqual(unset.map((i) => i.path.join('.')), ['listeners.0.tls.certificates.0.passphrase.env', 'listeners.0.tls.clientAuth.trustBundle.0.env'])
    const empty = checkConfig(withTrust([{ file: 'ca.pem' }], { file: 'empty.txt' }), source)
    assert.deepEqual(empty.map((i) => i.path.join('.')), ['listeners.0.tls.certificates.0.passphrase.file'])
  })

  test('never puts file contents into a message', () => {
    const issues = checkConfig(withTrust([{ file: 'secret.txt' }]), source)
    assert.equal(issues.length, 1)
    assert.ok(!issues[0]!.message.includes('horse'), issues[0]!.message)
  })

  test('refuses files over the size limit without reading them', () => {
    const big = join(dir, 'big.pem')
    writeFileSync(big, '')
    truncateSync(big, maxSourceFileBytes + 1)
    assert.deepEqual(checkConfig(withTrust([{ file: 'big.pem' }]), source).map((i) => i.path.join('.')), ['listeners.0.tls.clientAuth.trustBundle.0.file'])
  })

  test('does not block on a FIFO', () => {
    const fifo = join(dir, 'pipe.pem')
    execFileSync('mkfifo', [fifo])
    const issues = checkConfig(withTrust([{ file: 'pipe.pem' }]), source)
    assert.deepEqual(issues.map((i) => i.path.join('.')), ['listeners.0.tls.clientAuth.trustBundle.0.file'])
  })

  test('does not look at files when no source context is given', () => {
    assert.deepEqual(checkConfig(withTrust([{ file: 'nope.pem' }])), [])
  })

  test('refuses an expiry webhook secret shorter than 32 characters, without quoting it', () => {
    const withWebhook = (env: string) => build({ expiryMonitoring: { webhook: { url: 'https://alerts.example/hook', secret: { env } } } })
    const env = { SHORT: 'too-short-secret', LONG: 'x'.repeat(32) }
    const issues = checkConfig(withWebhook('SHORT'), { baseDir: dir, env })
    assert.deepEqual(issues.map((i) => i.path.join('.')), ['expiryMonitoring.webhook.secret.env'])
    assert.match(issues[0]!.message, /16 characters; at least 32 are required/)
    assert.ok(!issues[0]!.message.includes('too-short-secret'), issues[0]!.message)
    assert.deepEqual(checkConfig(withWebhook('LONG'), { baseDir: dir, env }), [])
  })
})
