import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { constants } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import { TestPki } from '../../../test/harness/pki.js'
import { ConfigError } from '../../config/issues.js'
import { listenerSchema } from '../../config/schema/listeners.js'
import { FixedClock } from '../../shared/clock.js'
import { compileListenerTls, makeSniCallback, unknownServerNameCode } from './listener-tls.js'

const pki = new TestPki()
const ca = pki.root('lt-ca')
const otherCa = pki.root('lt-other')
const inter = pki.intermediate('lt-int', ca)
const srv = pki.server('lt-srv', ca, { san: 'DNS:a.example,DNS:*.w.example,DNS:localhost' })
const srv2 = pki.server('lt-srv2', otherCa, { san: 'DNS:b.example' })
const deps = { source: { baseDir: pki.dir, env: {} as Record<string, string | undefined> }, clock: new FixedClock(Date.now()), path: ['listeners', 0] }

function config(tls: Record<string, unknown> = {}, clientAuth: Record<string, unknown> = {}) {
  return listenerSchema.parse({
    name: 'edge',
    port: 0,
    tls: {
      certificates: [{ serverNames: ['a.example', '*.w.example'], cert: { file: srv.chain }, key: { file: srv.key } }],
      clientAuth: { trustBundle: [{ file: ca.cert }], ...clientAuth },
      ...tls,
    },
  })
}

/** The issues a config yields, as "path: message-start" for compact assertions. */
function issuesOf(cfg: ReturnType<typeof config>, d = deps): string[] {
  try {
    compileListenerTls(cfg, d)
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.issues.map((i) => i.path.join('.'))
  }
  assert.fail('expected a ConfigError')
}

describe('compileListenerTls: options', { timeout: 20_000 }, () => {
  it('asks for a client certificate but leaves the decision to verifyPeer', () => {
    const lt = compileListenerTls(config(), deps)
    assert.equal(lt.serverOptions.requestCert, true)
    assert.equal(lt.serverOptions.rejectUnauthorized, false)
    assert.equal(typeof lt.serverOptions.SNICallback, 'function')
    assert.equal('ticketKeys' in lt.serverOptions, false)
  })

  it('sets no renegotiation, no compression, server cipher order, TLS 1.3 max, seconds for sessionTimeout', () => {
    const lt = compileListenerTls(config({ sessionTimeout: '90s' }), deps)
    const o = lt.defaultContextOptions
    for (const flag of [constants.SSL_OP_NO_RENEGOTIATION, constants.SSL_OP_NO_COMPRESSION, constants.SSL_OP_CIPHER_SERVER_PREFERENCE]) {
      assert.equal((o.secureOptions ?? 0) & flag, flag)
    }
    assert.equal((o.secureOptions ?? 0) & constants.SSL_OP_NO_TICKET, 0)
    assert.equal(o.honorCipherOrder, true)
    assert.equal(o.minVersion, 'TLSv1.3')
    assert.equal(o.maxVersion, 'TLSv1.3')
    assert.equal(o.sessionTimeout, 90)
    assert.deepEqual(o.ca, [readFileSync(ca.cert, 'utf8').trim()])
  })

  it('asks for no certificate and sets no CA in mode none', () => {
    const lt = compileListenerTls(config({}, { mode: 'none', trustBundle: [] }), deps)
    assert.equal(lt.serverOptions.requestCert, false)
    assert.equal(lt.defaultContextOptions.ca, undefined)
  })

  it('turns tickets off when sessionTickets is false, and for per-name trust with TLS 1.2', () => {
    const off = compileListenerTls(config({ sessionTickets: false }), deps)
    assert.equal(off.hasSessionTickets, false)
    assert.equal((off.defaultContextOptions.secureOptions ?? 0) & constants.SSL_OP_NO_TICKET, constants.SSL_OP_NO_TICKET)
    const perName = { perServerName: [{ serverNames: ['a.example'], trustBundle: [{ file: otherCa.cert }] }] }
    assert.equal(compileListenerTls(config({ minVersion: 'TLSv1.2' }, perName), deps).hasSessionTickets, false)
    assert.equal(compileListenerTls(config({ minVersion: 'TLSv1.3' }, perName), deps).hasSessionTickets, true)
  })

  it('changes the session-id context when the trust changes, not otherwise', () => {
    const a = compileListenerTls(config(), deps).defaultContextOptions.sessionIdContext
    const again = compileListenerTls(config(), deps).defaultContextOptions.sessionIdContext
    const more = compileListenerTls(config({}, { trustBundle: [{ file: ca.cert }, { file: otherCa.cert }] }), deps).defaultContextOptions.sessionIdContext
    assert.equal(a, again)
    assert.notEqual(a, more)
    assert.equal(a?.length, 32)
  })

  it('picks contexts by SNI: exact, one-label wildcard, default or none', () => {
    const two = config({ certificates: [
      { serverNames: ['a.example', '*.w.example'], cert: { file: srv.chain }, key: { file: srv.key } },
      { serverNames: ['b.example'], cert: { file: srv2.chain }, key: { file: srv2.key } },
    ] })
    const lt = compileListenerTls(two, deps)
    const dflt = lt.contextFor(undefined)
    assert.ok(dflt)
    assert.equal(lt.contextFor('A.EXAMPLE'), dflt)
    assert.equal(lt.contextFor('x.w.example'), dflt)
    assert.notEqual(lt.contextFor('b.example'), dflt)
    assert.equal(lt.contextFor('unknown.example'), dflt)
    const strict = compileListenerTls({ ...two, tls: { ...two.tls, unknownServerName: 'reject' } }, deps)
    assert.equal(strict.contextFor('unknown.example'), undefined)
    assert.equal(strict.contextFor('y.x.w.example'), undefined)
    assert.ok(strict.contextFor('b.example'))
  })

  it('gives per-name trust its own context and trust key', () => {
    const lt = compileListenerTls(config({}, { perServerName: [{ serverNames: ['*.w.example'], trustBundle: [{ file: otherCa.cert }] }] }), deps)
    assert.notEqual(lt.contextFor('x.w.example'), lt.contextFor('a.example'))
    assert.equal(lt.trustKeyFor('a.example'), lt.trustKeyFor(undefined))
    assert.notEqual(lt.trustKeyFor('X.w.example'), lt.trustKeyFor('a.example'))
  })

  it('makeSniCallback follows the ListenerTls it is given and fails unknown names with a code', async () => {
    let current = compileListenerTls(config({ unknownServerName: 'reject' }), deps)
    const sni = makeSniCallback(() => current)
    const ask = (name: string) => new Promise<[Error | null, unknown]>((resolve) => sni(name, (err, ctx) => resolve([err, ctx])))
    const [err, ctx] = await ask('nope.example')
    assert.equal((err as NodeJS.ErrnoException).code, unknownServerNameCode)
    assert.equal(ctx, undefined)
    current = compileListenerTls(config({ unknownServerName: 'default' }), deps)
    const [err2, ctx2] = await ask('nope.example')
    assert.equal(err2, null)
    assert.equal(ctx2, current.contextFor(undefined))
  })
})

describe('compileListenerTls: config issues at their paths', { timeout: 20_000 }, () => {
  const base = 'listeners.0.tls'

  it('reports a key that does not match its certificate', () => {
    const cfg = config({ certificates: [{ cert: { file: srv.chain }, key: { file: srv2.key } }] })
    assert.deepEqual(issuesOf(cfg), [`${base}.certificates.0.key`])
  })

  it('reports PEM that does not parse and files that do not exist', () => {
    const bad = join(pki.dir, 'bad.pem')
    writeFileSync(bad, '-----BEGIN CERTIFICATE-----\nnot base64!\n-----END CERTIFICATE-----\n')
    assert.deepEqual(issuesOf(config({ certificates: [{ cert: { file: bad }, key: { file: srv.key } }] })), [`${base}.certificates.0.cert`])
    assert.deepEqual(issuesOf(config({}, { trustBundle: [{ file: ca.cert }, { file: 'missing.pem' }] })), [`${base}.clientAuth.trustBundle.1`])
  })

  it('reports a missing trust bundle when mode is not none, and unused ones when it is', () => {
    assert.deepEqual(issuesOf(config({}, { trustBundle: [] })), [`${base}.clientAuth.trustBundle`])
    assert.deepEqual(issuesOf(config({}, { mode: 'optional', trustBundle: [] })), [`${base}.clientAuth.trustBundle`])
    assert.deepEqual(issuesOf(config({}, { mode: 'none' })), [`${base}.clientAuth.mode`])
  })

  it('refuses private keys, leaves and intermediates in a trust bundle', () => {
    assert.deepEqual(issuesOf(config({}, { trustBundle: [{ file: srv.key }] })), [`${base}.clientAuth.trustBundle.0`])
    assert.deepEqual(issuesOf(config({}, { trustBundle: [{ file: srv.cert }] })), [`${base}.clientAuth.trustBundle.0`])
    assert.deepEqual(issuesOf(config({}, { trustBundle: [{ file: ca.cert }, { file: inter.cert }] })), [`${base}.clientAuth.trustBundle.1`])
    assert.deepEqual(
      issuesOf(config({}, { perServerName: [{ serverNames: ['a.example'], trustBundle: [{ file: srv.cert }] }] })),
      [`${base}.clientAuth.perServerName.0.trustBundle.0`],
    )
  })

  it('reports an encrypted key without passphrase, and a wrong passphrase', () => {
    const enc = join(pki.dir, 'enc.key')
    execFileSync('openssl', ['pkcs8', '-topk8', '-in', srv.key, '-out', enc, '-passout', 'pass:s3cret', '-v2', 'aes-256-cbc'])
    const withKey = (passphrase?: object) => config({ certificates: [{ cert: { file: srv.chain }, key: { file: enc }, ...(passphrase ? { passphrase } : {}) }] })
    assert.deepEqual(issuesOf(withKey()), [`${base}.certificates.0.key`])
    const env = { PASS: 'wrong' }
    assert.deepEqual(issuesOf(withKey({ env: 'PASS' }), { ...deps, source: { ...deps.source, env } }), [`${base}.certificates.0.passphrase`])
    const ok = compileListenerTls(withKey({ env: 'PASS' }), { ...deps, source: { ...deps.source, env: { PASS: 's3cret' } } })
    assert.equal(ok.defaultContextOptions.passphrase, 's3cret')
  })

  it('reports server names the certificate does not cover and names listed twice', () => {
    assert.deepEqual(issuesOf(config({ certificates: [{ serverNames: ['a.example', 'c.example'], cert: { file: srv.chain }, key: { file: srv.key } }] })), [`${base}.certificates.0.serverNames.1`])
    assert.deepEqual(
      issuesOf(config({ certificates: [
        { serverNames: ['a.example'], cert: { file: srv.chain }, key: { file: srv.key } },
        { serverNames: ['a.example'], cert: { file: srv.chain }, key: { file: srv.key } },
      ] })),
      [`${base}.certificates.1.serverNames.0`],
    )
  })

  it('reports a chain that is not leaf first', () => {
    const reversed = join(pki.dir, 'reversed.pem')
    const leaf = pki.server('lt-via-int', inter, { san: 'DNS:a.example' }, [inter])
    writeFileSync(reversed, readFileSync(inter.cert, 'utf8') + readFileSync(leaf.cert, 'utf8'))
    assert.deepEqual(issuesOf(config({ certificates: [{ cert: { file: reversed }, key: { file: leaf.key } }] })), [`${base}.certificates.0.cert`, `${base}.certificates.0.key`])
  })

  it('reports cipher and group lists OpenSSL does not accept', () => {
    assert.deepEqual(issuesOf(config({ ciphers: 'NOT-A-CIPHER' })), [`${base}.ciphers`])
    assert.deepEqual(issuesOf(config({ ecdhCurves: 'P-1' })), [`${base}.ecdhCurves`])
    assert.deepEqual(issuesOf(config({ ciphers: ' ' })), [`${base}.ciphers`])
  })

  it('reports per-name trust for names no certificate serves when unknown names are rejected', () => {
    const cfg = config({ unknownServerName: 'reject' }, { perServerName: [{ serverNames: ['a.example', 'z.example'], trustBundle: [{ file: otherCa.cert }] }] })
    assert.deepEqual(issuesOf(cfg), [`${base}.clientAuth.perServerName.0.serverNames.1`])
  })

  it('collects every issue instead of stopping at the first', () => {
    const cfg = config({ ciphers: 'NOT-A-CIPHER', certificates: [{ cert: { file: srv.chain }, key: { file: srv2.key } }] }, { trustBundle: [] })
    assert.equal(issuesOf(cfg).length, 3)
  })
})
