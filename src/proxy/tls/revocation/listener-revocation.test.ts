/**
 * Compiling `revocation` blocks: nothing when none is set (the listener
 * behaves as before), and config issues at the right path for what can be
 * known at load time — CRL files that are unreadable, not CRLs, not
 * interpretable, or not signed by the anchor they name; a policy that could
 * never run; anchors shared by bundles with different policies.
 */
import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { ConfigError } from '../../../config/issues.js'
import { listenerSchema } from '../../../config/schema/listeners.js'
import { systemClock } from '../../../shared/clock.js'
import { silentLogger } from '../../../shared/log.js'
import { TestPki } from '../../../../test/harness/pki.js'
import { PartnerCa } from '../../../../test/integration/partner-ca.js'
import { compileListenerTls } from '../listener-tls.js'
import { CrlParserPool } from './crl-parser-pool.js'
import { compileListenerRevocation } from './listener-revocation.js'

const pki = new TestPki()
const gw = pki.root('lr-gw')
const server = pki.server('lr-server', gw, { san: 'DNS:localhost,DNS:a.example,DNS:b.example' })
const partner = pki.root('lr-partner')
const other = pki.root('lr-other')
const file = (name: string, data: Buffer | string) => {
  writeFileSync(join(pki.dir, name), data)
  return name
}
const goodCrl = file('good.crl', new PartnerCa(pki, partner).crl())
const impostorPki = new TestPki()
const forgedCrl = file('forged.crl', new PartnerCa(impostorPki, impostorPki.root('lr-partner')).crl())
const deltaCrl = file('delta.crl', new PartnerCa(pki, partner).crl({ extensions: '2.5.29.27=critical,ASN1:INTEGER:1' }))
const notCrl = file('not.crl', 'hello')
const pool = new CrlParserPool({ idleMs: 500 })
after(() => pool.close())

function compile(clientAuth: Record<string, unknown>) {
  const cfg = listenerSchema.parse({
    name: 'edge',
    port: 0,
    tls: { certificates: [{ serverNames: ['localhost'], cert: { file: server.chain }, key: { file: server.key } }], clientAuth },
  })
  const deps = { source: { baseDir: pki.dir, env: {} }, clock: systemClock, log: silentLogger(), path: ['listeners', 0] }
  const tls = compileListenerTls(cfg, deps)
  return compileListenerRevocation(cfg, { ...deps, tls, pool })
}

async function issuesOf(clientAuth: Record<string, unknown>): Promise<{ path: string; message: string }[]> {
  try {
    await compile(clientAuth)?.loaded
    return []
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.issues.map((i) => ({ path: i.path.join('.'), message: i.message }))
  }
}

const bundle = [{ file: partner.cert }]
const base = 'listeners.0.tls.clientAuth'

describe('compileListenerRevocation', () => {
  it('compiles nothing when no trust bundle has a revocation block', () => {
    assert.equal(compile({ trustBundle: bundle }), undefined)
  })

  it('loads a CRL file signed by the anchor it names', async () => {
    const revocation = compile({ trustBundle: bundle, revocation: { crlFiles: [{ file: goodCrl }] } })
    assert.ok(revocation)
    await revocation.loaded
  })

  it('reports CRL files that cannot be used, at their path', async () => {
    const files = [{ file: 'missing.crl' }, { file: notCrl }, { file: deltaCrl }, { file: forgedCrl }]
    const first = await issuesOf({ trustBundle: bundle, revocation: { crlFiles: files } })
    assert.deepEqual(first.map((i) => i.path), [`${base}.revocation.crlFiles.0.file`])
    assert.match(first[0]!.message, /missing\.crl: ENOENT/)
    const rest = await issuesOf({ trustBundle: bundle, revocation: { crlFiles: files.slice(1) } })
    assert.deepEqual(rest.map((i) => i.path), [0, 1, 2].map((j) => `${base}.revocation.crlFiles.${j}.file`))
    assert.match(rest[0]!.message, /not\.crl: not a CRL/)
    assert.match(rest[1]!.message, /delta CRL/)
    assert.match(rest[2]!.message, /names O=Portcullis Test,CN=lr-partner as issuer but is not signed by that CA's key/)
  })

  it('refuses a CRL file larger than maxCrlSize', async () => {
    const issues = await issuesOf({ trustBundle: bundle, revocation: { crlFiles: [{ file: goodCrl }], maxCrlSize: 10 } })
    assert.match(issues[0]!.message, /more than maxCrlSize 10/)
  })

  it('refuses a policy that could never run', async () => {
    const issues = await issuesOf({ mode: 'none', revocation: {} })
    assert.deepEqual(issues, [{ path: `${base}.revocation`, message: 'mode "none" asks for no client certificate, so revocation checking would never run; remove it or set mode' }])
  })

  it('refuses bundles with the same anchors but different policies', async () => {
    const issues = await issuesOf({
      trustBundle: bundle,
      revocation: { failMode: 'hard' },
      perServerName: [
        { serverNames: ['a.example'], trustBundle: bundle, revocation: { failMode: 'soft' } },
        { serverNames: ['b.example'], trustBundle: [{ file: other.cert }], revocation: { failMode: 'soft' } },
      ],
    })
    assert.deepEqual(issues.map((i) => i.path), [`${base}.perServerName.0.revocation`])
    assert.match(issues[0]!.message, /same CA certificates as listeners\.0\.tls\.clientAuth but another revocation policy/)
  })
})
