import { before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TestPki, pem, type CaFiles, type CertFiles } from '../../../test/harness/pki.js'
import { ConfigError } from '../../config/issues.js'
import { upstreamSchema } from '../../config/schema/upstreams.js'
import { buildUpstreamConnector } from './connector.js'

let pki: TestPki
let ca: CaFiles
let client: CertFiles
let other: CertFiles
let encryptedKey: string

before(() => {
  pki = new TestPki()
  ca = pki.root('conn-ca')
  client = pki.client('gw-client', ca)
  other = pki.client('other-client', ca)
  encryptedKey = join(pki.dir, 'gw-client.enc.key')
  execFileSync('openssl', ['pkey', '-in', client.key, '-aes256', '-passout', 'pass:s3cret-pass', '-out', encryptedKey])
})

const source = () => ({ baseDir: pki.dir, env: { KEY_PASS: 's3cret-pass', WRONG_PASS: 'nope' } })

function build(tls: Record<string, unknown>) {
  const cfg = upstreamSchema.parse({ targets: [{ url: 'https://127.0.0.1:9443' }], tls })
  return buildUpstreamConnector('orders', cfg, source())
}

function issueOf(fn: () => unknown): { path: readonly (string | number)[]; message: string } {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, `expected ConfigError, got ${String(err)}`)
    assert.equal(err.issues.length, 1)
    return err.issues[0]!
  }
  assert.fail('expected a ConfigError')
}

describe('buildUpstreamConnector', () => {
  test('accepts a CA, a client certificate and its key', () => {
    const c = build({ ca: [{ file: ca.cert }], cert: { file: client.cert }, key: { file: client.key } })
    assert.equal(typeof c.connect, 'function')
    assert.equal(c.servernameFor('orders.internal'), 'orders.internal')
  })

  test('uses the configured serverName for every target', () => {
    const c = build({ ca: [{ file: ca.cert }], serverName: 'orders.svc' })
    assert.equal(c.servernameFor('10.0.0.7'), 'orders.svc')
  })

  test('decrypts an encrypted key with its passphrase', () => {
    build({ cert: { file: client.cert }, key: { file: encryptedKey }, passphrase: { env: 'KEY_PASS' } })
  })

  test('reports an unreadable CA file at tls.ca.<index>', () => {
    const issue = issueOf(() => build({ ca: [{ file: ca.cert }, { file: 'missing.pem' }] }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'ca', 1])
  })

  test('reports a malformed CA certificate at tls.ca.<index>', () => {
    const bad = join(pki.dir, 'bad-ca.pem')
    writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n')
    const issue = issueOf(() => build({ ca: [{ file: bad }] }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'ca', 0])
  })

  test('reports a key that does not belong to the certificate at tls.key', () => {
    const issue = issueOf(() => build({ cert: { file: client.cert }, key: { file: other.key } }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'key'])
  })

  test('reports a wrong passphrase at tls.key without echoing key or passphrase', () => {
    const issue = issueOf(() => build({ cert: { file: client.cert }, key: { file: encryptedKey }, passphrase: { env: 'WRONG_PASS' } }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'key'])
    const keyBody = pem(encryptedKey).split('\n')[1]!
    assert.ok(!issue.message.includes(keyBody))
    assert.ok(!issue.message.includes('nope'))
  })

  test('reports an encrypted key without a passphrase at tls.key', () => {
    const issue = issueOf(() => build({ cert: { file: client.cert }, key: { file: encryptedKey } }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'key'])
  })

  test('reports an unset passphrase variable at tls.passphrase', () => {
    const issue = issueOf(() => build({ cert: { file: client.cert }, key: { file: encryptedKey }, passphrase: { env: 'UNSET_VAR' } }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'passphrase'])
  })

  test('reports a certificate file holding no PEM at tls.cert', () => {
    const notPem = join(pki.dir, 'not-pem.txt')
    writeFileSync(notPem, 'hello\n')
    const issue = issueOf(() => build({ cert: { file: notPem }, key: { file: client.key } }))
    assert.deepEqual(issue.path, ['upstreams', 'orders', 'tls', 'cert'])
  })
})

describe('target URL schema', () => {
  test('refuses credentials, a query or a fragment in a target URL', () => {
    for (const url of ['http://user:pw@10.0.0.1', 'http://10.0.0.1/?a=1', 'http://10.0.0.1/#x', 'ftp://10.0.0.1']) {
      assert.equal(upstreamSchema.safeParse({ targets: [{ url }] }).success, false, url)
    }
    assert.equal(upstreamSchema.safeParse({ targets: [{ url: 'https://orders.internal:8443/api' }] }).success, true)
  })
})
