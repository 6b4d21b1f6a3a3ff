import assert from 'node:assert/strict'
import { copyFileSync } from 'node:fs'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { TestPki } from '../../test/harness/pki.js'
import type { ConfigIssue } from './issues.js'
import { loadConfig, withPositions } from './load.js'
import { maxAliasCount, maxConfigBytes } from './parse-yaml.js'

const source = { baseDir: '/nonexistent', env: {} }
const pemLine = '"-----BEGIN CERTIFICATE-----"'

/** A valid config; `extra` lines go under the first listener's `tls.clientAuth`. */
function config(clientAuth = `mode: none`, tail = ''): string {
  return [
    'version: 1',
    'listeners:',
    '  - name: edge',
    '    port: 8443',
    '    tls:',
    `      certificates: [{ cert: { pem: ${pemLine} }, key: { pem: ${pemLine} } }]`,
    '      clientAuth:',
    `        ${clientAuth}`,
    'upstreams: {}',
    tail,
  ].join('\n')
}

function issuesOf(text: string, file = 'gateway.yaml'): ConfigIssue[] {
  const result = loadConfig(text, file, { source })
  assert.equal(result.ok, false, 'expected the config to be refused')
  return result.ok ? [] : result.issues
}

function only(issues: readonly ConfigIssue[]): ConfigIssue {
  assert.equal(issues.length, 1, `expected one issue, got ${JSON.stringify(issues)}`)
  return issues[0]!
}

describe('loadConfig', { timeout: 20_000 }, () => {
  test('returns the validated config with defaults applied and durations in ms', () => {
    const result = loadConfig(config(), 'gateway.yaml', { source })
    assert.ok(result.ok)
    const listener = result.config.listeners[0]!
    assert.equal(listener.tls.handshakeTimeout, 10_000)
    assert.equal(listener.limits.maxHeaderSize, 16 * 1024)
    assert.deepEqual(result.config.routes, [])
  })

  test('returns a deep-frozen config: writes at any depth throw', () => {
    const result = loadConfig(config(), 'gateway.yaml', { source })
    assert.ok(result.ok)
    const listener = result.config.listeners[0]!
    assert.ok(Object.isFrozen(result.config))
    assert.ok(Object.isFrozen(listener.tls.certificates[0]!.cert))
    assert.throws(() => {
      ;(listener as { port: number }).port = 1
    }, TypeError)
    assert.throws(() => result.config.routes.push(result.config.routes[0]!), TypeError)
  })

  test('points a bad value at the value: line and column of the enum', () => {
    const issue = only(issuesOf(config('mode: requird')))
    assert.deepEqual(issue.path, ['listeners', 0, 'tls', 'clientAuth', 'mode'])
    assert.equal(issue.file, 'gateway.yaml')
    assert.equal(issue.line, 8)
    assert.equal(issue.col, 15)
  })

  test('points an unknown key at the key and suggests the known one', () => {
    const issue = only(issuesOf(config('mode: none\n        trustbundle: []')))
    assert.deepEqual(issue.path, ['listeners', 0, 'tls', 'clientAuth', 'trustbundle'])
    assert.deepEqual([issue.line, issue.col], [9, 9])
    assert.match(issue.message, /"trustBundle"/)
  })

  test('points a missing required key at its parent mapping', () => {
    const issue = only(issuesOf(config().replace('    port: 8443\n', '')))
    assert.deepEqual(issue.path, ['listeners', 0, 'port'])
    assert.deepEqual([issue.line, issue.col], [3, 5]) // "name:" starts the listener mapping
  })

  test('reports one issue per unknown key, sorted by position', () => {
    const issues = issuesOf(config('mode: none\n        zeta: 1\n        alpha: 2', 'extra: 3'))
    assert.deepEqual(
      issues.map((i) => i.path.join('.')),
      ['listeners.0.tls.clientAuth.zeta', 'listeners.0.tls.clientAuth.alpha', 'extra'],
    )
    assert.deepEqual(issues.map((i) => i.line), [9, 10, 12])
  })

  test('explains a PEM source that is neither file, pem nor env', () => {
    const issue = only(issuesOf(config().replace(`key: { pem: ${pemLine} }`, 'key: server.key')))
    assert.deepEqual(issue.path, ['listeners', 0, 'tls', 'certificates', 0, 'key'])
    assert.match(issue.message, /\{ file \} \| \{ pem \} \| \{ env \}/)
  })

  test('reports the chosen branch of a PEM source when one key decides it', () => {
    const issue = only(issuesOf(config().replace(`key: { pem: ${pemLine} }`, 'key: { file: 42 }')))
    assert.deepEqual(issue.path, ['listeners', 0, 'tls', 'certificates', 0, 'key', 'file'])
  })

  test('reports YAML syntax errors with positions and does not validate further', () => {
    const issues = issuesOf('version: 1\nlisteners: [\n  - a\nzzz: 1\n')
    assert.ok(issues.length >= 1)
    for (const issue of issues) {
      assert.deepEqual(issue.path, [])
      assert.ok((issue.line ?? 0) >= 2, `line of ${JSON.stringify(issue)}`)
    }
    assert.ok(!issues.some((i) => i.message.includes('zzz')), 'schema issues must not follow syntax errors')
  })

  test('refuses duplicate keys at the second occurrence', () => {
    const issue = only(issuesOf(config().replace('    port: 8443\n', '    port: 8443\n    port: 9443\n')))
    assert.deepEqual([issue.line, issue.col], [5, 5])
    assert.match(issue.message, /"port"/)
  })

  test('refuses merge keys but accepts anchors and aliases of whole values', () => {
    const anchored = config().replace('upstreams: {}', 'upstreams:\n  a: &u { targets: [{ url: "http://127.0.0.1:1" }] }\n  b: *u')
    const ok = loadConfig(anchored, 'gateway.yaml', { source })
    assert.ok(ok.ok, JSON.stringify(ok))
    assert.deepEqual(ok.config.upstreams.a, ok.config.upstreams.b)

    const merged = config().replace('upstreams: {}', 'upstreams:\n  a: &u { targets: [{ url: "http://127.0.0.1:1" }] }\n  b:\n    <<: *u\n    balancing: least_request')
    const issue = only(issuesOf(merged))
    assert.deepEqual([issue.line, issue.col], [12, 5])
    assert.match(issue.message, /merge keys/)
  })

  test('treats yes/no/on/off as strings (YAML 1.2), so they are not booleans', () => {
    const issue = only(issuesOf(config().replace('    port: 8443\n', '    port: 8443\n    http2: no\n')))
    assert.deepEqual(issue.path, ['listeners', 0, 'http2'])
  })

  test('refuses a %YAML 1.1 directive', () => {
    const issues = issuesOf(`%YAML 1.1\n---\n${config()}`)
    assert.ok(issues.some((i) => /YAML 1\.2/.test(i.message)), JSON.stringify(issues))
  })

  test('refuses tags other than the core ones', () => {
    for (const tagged of ['!!binary aGk=', '!custom x', '!!set { a }']) {
      const issue = only(issuesOf(config().replace('upstreams: {}', `upstreams: {}\nextra: ${tagged}`)))
      assert.equal(issue.line, 10, tagged) // the tagged value
    }
    const ok = loadConfig(config().replace('port: 8443', 'port: !!int "8443"'), 'gateway.yaml', { source })
    assert.ok(ok.ok, JSON.stringify(ok))
  })

  test('refuses more than one document', () => {
    const issues = issuesOf(`${config()}\n---\nversion: 1\n`)
    assert.ok(issues.length >= 1 && issues.every((i) => i.path.length === 0))
  })

  test('refuses an empty file', () => {
    const issue = only(issuesOf(''))
    assert.deepEqual([issue.line, issue.col], [1, 1])
  })

  test('refuses non-scalar keys', () => {
    const issues = issuesOf(config().replace('upstreams: {}', 'upstreams: {}\n? [a, b]\n: 1'))
    assert.ok(issues.length >= 1 && issues.every((i) => i.path.length === 0 && i.line === 10), JSON.stringify(issues))
  })

  test('treats __proto__ as an unknown key and leaves Object.prototype alone', () => {
    const issue = only(issuesOf(config().replace('upstreams: {}', 'upstreams: {}\n__proto__: { polluted: true }')))
    assert.deepEqual(issue.path, ['__proto__'])
    assert.equal((Object.prototype as Record<string, unknown>).polluted, undefined)
  })

  test('refuses a document over the size limit before parsing it', () => {
    const text = `${config()}\n# ${'x'.repeat(maxConfigBytes)}\n`
    const started = performance.now()
    const issue = only(issuesOf(text))
    assert.deepEqual([issue.line, issue.col], [1, 1])
    assert.ok(performance.now() - started < 1000)
  })

  test('refuses deeply nested flow collections without exhausting memory', () => {
    // 10,000 levels make yaml's composer abort the process; the lexer-level check must stop it first.
    const issue = only(issuesOf(`${config()}\nextra: ${'['.repeat(10_000)}${']'.repeat(10_000)}\n`))
    assert.equal(issue.line, 11)
    assert.equal(issue.col, 8 + 64) // the 65th bracket
  })

  test('accepts brackets inside quoted and block scalars', () => {
    const deepText = '['.repeat(200)
    const text = config().replace('upstreams: {}', `upstreams: {}\nidentityAssertion:\n  issuer: "${deepText}"\n  audience: |\n    ${deepText}\n`)
    const result = loadConfig(text, 'gateway.yaml', { source })
    assert.ok(result.ok, JSON.stringify(result))
  })

  test('refuses alias bombs', () => {
    const lines = ['a: &a [x, x, x, x, x, x, x, x, x, x]']
    for (const [name, prev] of [['b', 'a'], ['c', 'b'], ['d', 'c'], ['e', 'd']] as const) {
      lines.push(`${name}: &${name} [${Array(10).fill(`*${prev}`).join(', ')}]`)
    }
    const issue = only(issuesOf(lines.join('\n')))
    assert.equal(issue.line, 2)
    assert.match(issue.message, new RegExp(String(maxAliasCount)))
  })

  test('reports check issues (references) at the offending value', () => {
    const text = config().replace('upstreams: {}', 'upstreams: {}\nroutes:\n  - name: r\n    match: {}\n    access: { allowAnonymous: true }\n    upstream: nowhere')
    const issue = only(issuesOf(text))
    assert.deepEqual(issue.path, ['routes', 0, 'upstream'])
    assert.deepEqual([issue.line, issue.col], [14, 15])
  })
})

describe('loadConfig with files', { timeout: 30_000 }, () => {
  let pki: TestPki
  before(() => {
    pki = new TestPki()
    const ca = pki.root('files-ca')
    const server = pki.server('files-server', ca)
    copyFileSync(server.cert, join(pki.dir, 'server.crt'))
    copyFileSync(server.key, join(pki.dir, 'server.key'))
    copyFileSync(ca.cert, join(pki.dir, 'ca.crt'))
  })

  test('resolves file references relative to the config directory', () => {
    const text = config('trustBundle: [{ file: ca.crt }]').replace(
      `certificates: [{ cert: { pem: ${pemLine} }, key: { pem: ${pemLine} } }]`,
      'certificates: [{ cert: { file: server.crt }, key: { file: server.key } }]',
    )
    const result = loadConfig(text, 'gateway.yaml', { source: { baseDir: pki.dir, env: {} } })
    assert.ok(result.ok, JSON.stringify(result))
  })

  test('reports an unreadable file at the path value without its contents', () => {
    const text = config('trustBundle: [{ file: missing.crt }, { file: server.key }]')
    const result = loadConfig(text, 'gateway.yaml', { source: { baseDir: pki.dir, env: {} } })
    assert.ok(!result.ok)
    assert.deepEqual(
      result.issues.map((i) => i.path.join('.')),
      ['listeners.0.tls.clientAuth.trustBundle.0.file'],
    )
    assert.match(result.issues[0]!.message, /ENOENT/)
    assert.deepEqual([result.issues[0]!.line, result.issues[0]!.col], [8, 31])
  })
})

describe('withPositions', () => {
  test('places compile-step issues at their value, or at the nearest existing parent', () => {
    const text = config()
    const placed = withPositions(
      [
        { path: ['listeners', 0, 'tls', 'clientAuth', 'mode'], message: 'bad' },
        { path: ['listeners', 0, 'tls', 'clientAuth', 'trustBundle'], message: 'absent in YAML' },
        { path: [], message: 'whole config' },
      ],
      text,
      'gateway.yaml',
    )
    assert.deepEqual(
      placed.map((i) => [i.file, i.line, i.col, i.message]),
      [
        ['gateway.yaml', 1, 1, 'whole config'],
        ['gateway.yaml', 8, 9, 'absent in YAML'],
        ['gateway.yaml', 8, 15, 'bad'],
      ],
    )
  })

  test('keeps positions that issues already have', () => {
    const placed = withPositions([{ path: ['version'], message: 'm', file: 'x.yaml', line: 42, col: 7 }], config(), 'gateway.yaml')
    assert.deepEqual(placed, [{ path: ['version'], message: 'm', file: 'x.yaml', line: 42, col: 7 }])
  })

  test('names the file when the text cannot be parsed for positions', () => {
    const placed = withPositions([{ path: ['a'], message: 'm' }], '[['.repeat(100), 'gateway.yaml')
    assert.deepEqual(placed, [{ path: ['a'], message: 'm', file: 'gateway.yaml' }])
  })
})
