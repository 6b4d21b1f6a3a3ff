import assert from 'node:assert/strict'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { parse } from 'yaml'
import { configSchema } from '../config/schema/index.js'
import { FixedClock } from '../shared/clock.js'
import { renderDevConfig } from './dev-config.js'
import { ensureDevPki } from './dev-pki.js'

describe('renderDevConfig', { timeout: 30_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'portcullis-devconfig-'))
  after(() => rmSync(root, { recursive: true, force: true }))
  const pkiIn = (name: string) => ensureDevPki(join(root, name), { clock: new FixedClock(Date.now()) })

  test('validates against the config schema with the dev listener, identity, upstream and routes', async () => {
    const pki = await pkiIn('plain')
    const text = renderDevConfig({ pki, port: 8443, upstreamUrl: 'http://127.0.0.1:40123' })
    const result = configSchema.safeParse(parse(text))
    assert.ok(result.success, JSON.stringify(result.error?.issues))
    const config = result.data

    assert.equal(config.listeners.length, 1)
    const listener = config.listeners[0]!
    assert.deepEqual([listener.name, listener.host, listener.port], ['main', '127.0.0.1', 8443])
    assert.deepEqual(listener.tls.certificates.map((c) => [c.cert, c.key]), [[{ file: pki.server.certPath }, { file: pki.server.keyPath }]])
    assert.equal(listener.tls.clientAuth.mode, 'optional')
    assert.equal(listener.tls.clientAuth.rejectWithProblem, true)
    assert.deepEqual(listener.tls.clientAuth.trustBundle, [{ file: pki.ca.certPath }])

    assert.deepEqual(config.identities, {
      'dev-client': [{ spiffeId: 'spiffe://portcullis.dev/client/dev', issuerFingerprint: pki.ca.fingerprint256 }],
    })
    assert.deepEqual(Object.keys(config.upstreams), ['example'])
    assert.deepEqual(config.upstreams.example?.targets.map((t) => t.url), ['http://127.0.0.1:40123'])

    const routes = Object.fromEntries(config.routes.map((r) => [r.name, r]))
    assert.deepEqual(Object.keys(routes), ['public-health', 'example-api'])
    assert.deepEqual(routes['public-health']?.match.path, { exact: '/healthz' })
    assert.deepEqual(routes['public-health']?.match.methods, ['GET'])
    assert.equal(routes['public-health']?.access.allowAnonymous, true)
    assert.deepEqual(routes['example-api']?.match.path, { prefix: '/' })
    assert.deepEqual(routes['example-api']?.access.identities, ['dev-client'])
    assert.equal(routes['example-api']?.access.allowAnonymous, false)
    assert.equal(routes['example-api']?.access.allowAnyClientCert, false)
    for (const r of config.routes) assert.equal(r.upstream, 'example')
  })

  test('explains every top-level section with a comment', async () => {
    const text = renderDevConfig({ pki: await pkiIn('comments'), port: 8443, upstreamUrl: 'http://127.0.0.1:1' })
    const lines = text.split('\n')
    for (const section of ['listeners:', 'identities:', 'upstreams:', 'routes:']) {
      const at = lines.indexOf(section)
      assert.ok(at > 0, section)
      assert.match(lines[at - 1] ?? '', /^# /, `comment above ${section}`)
    }
  })

  test('a data folder path with YAML syntax in it stays one string', async () => {
    const pki = await pkiIn('odd: #name "quoted" \\ [x]')
    const result = configSchema.safeParse(parse(renderDevConfig({ pki, port: 9443, upstreamUrl: 'http://127.0.0.1:2' })))
    assert.ok(result.success, JSON.stringify(result.error?.issues))
    assert.deepEqual(result.data.listeners[0]?.tls.clientAuth.trustBundle, [{ file: pki.ca.certPath }])
    assert.equal(result.data.listeners[0]?.port, 9443)
  })

  test('refuses a port outside 0-65535', async () => {
    const pki = await pkiIn('ports')
    for (const port of [-1, 65536, 1.5, Number.NaN]) {
      assert.throws(() => renderDevConfig({ pki, port, upstreamUrl: 'http://127.0.0.1:2' }), RangeError)
    }
  })
})
