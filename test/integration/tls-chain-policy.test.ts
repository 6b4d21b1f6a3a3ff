/**
 * Portcullis's own checks on a presented client chain (chain-policy.ts, and
 * the path checks of trust.ts it builds on), each over a real TLS handshake on
 * 127.0.0.1 with a purpose-built bad chain made by the openssl CLI, beside a
 * good chain as control: basic constraints and path length, name constraints
 * of intermediates and roots, key strength and signature algorithms on every
 * certificate of the chain, leaf lifetime.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { once } from 'node:events'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import tls from 'node:tls'
import { listenerSchema } from '../../src/config/schema/listeners.js'
import { systemClock } from '../../src/shared/clock.js'
import { reasons } from '../../src/shared/reasons.js'
import { compileListenerTls, type ListenerTls, type PeerVerdict } from '../../src/proxy/tls/listener-tls.js'
import { TestPki, pem, type CaFiles, type CertFiles } from '../harness/pki.js'

const T = { timeout: 30_000 }
const DAY = 86_400_000

// ---- certificates (openssl) ----
const pki = new TestPki()
const root = pki.root('cp-root')
const srv = pki.server('cp-srv', root, { san: 'DNS:localhost,IP:127.0.0.1' })

/** An intermediate under `root` with extra extensions (pathlen 0 unless `extra` sets basicConstraints). */
function intermediate(name: string, extra: string, parent: CaFiles = root): CaFiles {
  const ca = pki.leaf(name, parent, {
    subject: `/CN=${name}/O=Portcullis Test`,
    eku: '',
    keyUsage: 'critical,keyCertSign,cRLSign',
    extraExtensions: extra.includes('basicConstraints') ? extra : `basicConstraints=critical,CA:TRUE,pathlen:0\n${extra}`,
  })
  const db = join(pki.dir, `${name}.db`)
  mkdirSync(db, { recursive: true })
  writeFileSync(join(db, 'index.txt'), '')
  return { cert: ca.cert, key: ca.key, name }
}

/**
 * A certificate signed with `openssl x509 -req`, for what TestPki does not
 * make: RSA-1024 keys, SHA-1 signatures, CA:FALSE "intermediates".
 */
function custom(name: string, issuer: CaFiles, opts: { keyBits?: number; md?: string; ext: string; subject?: string }): CaFiles {
  const key = join(pki.dir, `${name}.key`)
  const csr = join(pki.dir, `${name}.csr`)
  const ext = join(pki.dir, `${name}.x509ext`)
  const cert = join(pki.dir, `${name}.crt`)
  const keyArgs = opts.keyBits ? ['-algorithm', 'RSA', '-pkeyopt', `rsa_keygen_bits:${opts.keyBits}`] : ['-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256']
  execFileSync('openssl', ['genpkey', ...keyArgs, '-out', key], { stdio: 'ignore' })
  execFileSync('openssl', ['req', '-new', '-key', key, '-subj', opts.subject ?? `/CN=${name}/O=Portcullis Test`, '-out', csr], { stdio: 'ignore' })
  writeFileSync(ext, `[ext]\n${opts.ext}\nsubjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n`)
  execFileSync('openssl', ['x509', '-req', '-in', csr, '-CA', issuer.cert, '-CAkey', issuer.key, '-set_serial', `0x${Date.now().toString(16)}${Math.floor(Math.random() * 1e6)}`,
    '-days', '30', `-${opts.md ?? 'sha256'}`, '-extfile', ext, '-extensions', 'ext', '-out', cert], { stdio: 'ignore' })
  return { cert, key, name }
}
const clientExt = 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
const caExt = 'basicConstraints=critical,CA:TRUE,pathlen:0\nkeyUsage=critical,keyCertSign,cRLSign'

/** A chain file: leaf then the given CAs. */
function chainOf(leaf: CaFiles, cas: readonly CaFiles[]): CertFiles {
  const chain = join(pki.dir, `${leaf.name}.chain.pem`)
  writeFileSync(chain, [leaf, ...cas].map((c) => pem(c.cert)).join(''))
  return { cert: leaf.cert, key: leaf.key, chain }
}

// Name constraints: one intermediate per form, and a constrained root.
const ncDns = intermediate('nc-dns', 'nameConstraints=critical,permitted;DNS:.partner-a.example,excluded;DNS:bad.partner-a.example\n')
const ncUri = intermediate('nc-uri', 'nameConstraints=critical,permitted;URI:.partner-a.example\n')
const ncEmail = intermediate('nc-email', 'nameConstraints=critical,permitted;email:partner-a.example\n')
const ncIp = intermediate('nc-ip', 'nameConstraints=critical,permitted;IP:10.0.0.0/255.0.0.0,excluded;IP:10.9.0.0/255.255.0.0\n')
const ncDir = intermediate('nc-dir', 'nameConstraints=critical,permitted;dirName:nc_dir\n[nc_dir]\nO=Partner A\n')
const ncRid = intermediate('nc-rid', 'nameConstraints=critical,permitted;RID:1.2.3.4\n')
const ncRidSoft = intermediate('nc-rid-soft', 'nameConstraints=permitted;RID:1.2.3.4\n')
const viaDns = (name: string, opts: Parameters<TestPki['client']>[2], ca: CaFiles = ncDns) => pki.client(name, ca, opts, [ca])

const dnsGood = viaDns('dns-good', { san: 'DNS:svc.partner-a.example' })
const dnsOutside = viaDns('dns-outside', { san: 'DNS:svc.partner-a.example,DNS:svc.partner-b.example' })
const dnsExcluded = viaDns('dns-excluded', { san: 'DNS:bad.partner-a.example' })
const cnOutside = viaDns('cn-outside', { subject: '/CN=host.partner-b.example' })
const cnInside = viaDns('cn-inside', { subject: '/CN=host.partner-a.example' })
const uriGood = viaDns('uri-good', { san: 'URI:spiffe://td.partner-a.example/ns/x' }, ncUri)
const uriOutside = viaDns('uri-outside', { san: 'URI:spiffe://td.partner-b.example/ns/x' }, ncUri)
const emailGood = viaDns('email-good', { san: 'email:ops@partner-a.example' }, ncEmail)
const emailOutside = viaDns('email-outside', { san: 'email:ops@partner-b.example' }, ncEmail)
const ipGood = viaDns('ip-good', { san: 'IP:10.1.2.3' }, ncIp)
const ipOutside = viaDns('ip-outside', { san: 'IP:192.168.1.1' }, ncIp)
const ipExcluded = viaDns('ip-excluded', { san: 'IP:10.9.8.7' }, ncIp)
// `openssl ca` reorders the subject (CN first); x509 -req keeps O first, as real hierarchies name subjects.
const dirGood = chainOf(custom('dir-good', ncDir, { ext: clientExt, subject: '/O=Partner A/CN=dir-good' }), [ncDir])
const dirOutside = chainOf(custom('dir-outside', ncDir, { ext: clientExt, subject: '/O=Partner B/CN=dir-outside' }), [ncDir])
// One RDN, CN = "x,O=Partner A": its RFC 4514 text ends in "\,O=Partner A", which is not an O RDN.
const dirLookalike = chainOf(custom('dir-lookalike', ncDir, { ext: clientExt, subject: '/CN=x,O=Partner A' }), [ncDir])
const ridLeaf = viaDns('rid-leaf', {}, ncRid)
const ridSoftLeaf = viaDns('rid-soft-leaf', {}, ncRidSoft)
// A constrained root: its constraints bind the intermediate below it and the leaf.
const constrainedRoot = (() => {
  const key = join(pki.dir, 'nc-root.key')
  const cert = join(pki.dir, 'nc-root.crt')
  const conf = join(pki.dir, 'nc-root.ext')
  execFileSync('openssl', ['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key], { stdio: 'ignore' })
  writeFileSync(conf, '[req]\ndistinguished_name=dn\n[dn]\n[v3]\nbasicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\nsubjectKeyIdentifier=hash\nnameConstraints=critical,permitted;DNS:.root-zone.example\n')
  execFileSync('openssl', ['req', '-x509', '-new', '-key', key, '-subj', '/CN=nc-root/O=Portcullis Test', '-days', '30', '-config', conf, '-extensions', 'v3', '-out', cert], { stdio: 'ignore' })
  return { cert, key, name: 'nc-root' }
})()
const underRoot = custom('under-root-int', constrainedRoot, { ext: caExt })
const rootGood = chainOf(custom('root-zone-good', underRoot, { ext: `${clientExt}\nsubjectAltName=DNS:svc.root-zone.example` }), [underRoot])
const rootOutside = chainOf(custom('root-zone-outside', underRoot, { ext: `${clientExt}\nsubjectAltName=DNS:svc.elsewhere.example` }), [underRoot])

// Basic constraints and path length.
const int0 = pki.intermediate('pl-int0', root, 0)
const sub0 = pki.intermediate('pl-sub0', int0, 0)
const int1 = pki.intermediate('pl-int1', root, 1)
const sub1 = pki.intermediate('pl-sub1', int1, 0)
const overPathLen = pki.client('over-pathlen', sub0, {}, [sub0, int0])
const withinPathLen = pki.client('within-pathlen', sub1, {}, [sub1, int1])
const notCa = custom('not-ca-int', root, { ext: 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign,digitalSignature' })
const underNotCa = chainOf(custom('under-not-ca', notCa, { ext: clientExt }), [notCa])
const caAsLeaf = chainOf(custom('ca-as-leaf', root, { ext: 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,digitalSignature\nextendedKeyUsage=clientAuth' }), [])

// Keys and signature algorithms on every certificate of the chain.
const rsa1024Leaf = chainOf(custom('rsa1024-leaf', root, { keyBits: 1024, ext: clientExt }), [])
const rsa2048Leaf = chainOf(custom('rsa2048-leaf', root, { keyBits: 2048, ext: clientExt }), [])
const rsa1024Int = custom('rsa1024-int', root, { keyBits: 1024, ext: caExt })
const underRsa1024Int = chainOf(custom('under-rsa1024-int', rsa1024Int, { ext: clientExt }), [rsa1024Int])
const sha1Leaf = chainOf(custom('sha1-leaf', root, { md: 'sha1', ext: clientExt }), [])
const sha1Int = custom('sha1-int', root, { md: 'sha1', ext: caExt })
const underSha1Int = chainOf(custom('under-sha1-int', sha1Int, { ext: clientExt }), [sha1Int])

// Lifetime.
const longLived = pki.client('long-lived', root, { notBefore: new Date(Date.now() - DAY), notAfter: new Date(Date.now() + 400 * DAY) })
const shortLived = pki.client('short-lived', root)

// ---- server ----
const source = { baseDir: pki.dir, env: {} }
function compile(clientAuth: Record<string, unknown> = {}): ListenerTls {
  const cfg = listenerSchema.parse({
    name: 'edge',
    port: 0,
    tls: {
      certificates: [{ cert: { file: srv.chain }, key: { file: srv.key } }],
      clientAuth: { mode: 'required', trustBundle: [{ file: root.cert }, { file: constrainedRoot.cert }], maxChainDepth: 4, ...clientAuth },
    },
  })
  return compileListenerTls(cfg, { source, clock: systemClock })
}

let current = compile()
const verdicts: PeerVerdict[] = []
let server: tls.Server
let port = 0

before(async () => {
  server = tls.createServer(current.serverOptions, (socket) => {
    const verdict = current.verifyPeer(socket)
    verdicts.push(verdict)
    socket.on('error', () => {})
    socket.end('denial' in verdict ? `DENY ${verdict.denial.reason}\n` : 'OK\n')
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  port = (server.address() as { port: number }).port
})
after(() => new Promise<void>((r) => server.close(() => r())))

/** One real handshake with `client`; the server's verdict. SECLEVEL=0 so the client can even send weak chains. */
async function verdictFor(client: CertFiles): Promise<PeerVerdict> {
  const n = verdicts.length
  const socket = tls.connect({
    host: '127.0.0.1',
    port,
    servername: 'localhost',
    ca: pem(root.cert),
    ciphers: 'DEFAULT@SECLEVEL=0',
    key: pem(client.key),
    cert: pem(client.chain),
  })
  socket.on('error', () => {})
  socket.resume()
  await once(socket, 'close')
  const v = verdicts[n]
  assert.ok(v, 'the server saw the connection')
  return v
}

async function refused(client: CertFiles, reason: string, detail?: RegExp): Promise<void> {
  const v = await verdictFor(client)
  assert.ok('denial' in v, `expected ${reason}, got ${JSON.stringify(v)}`)
  assert.equal(v.denial.reason, reason)
  if (detail) assert.match(v.denial.detail ?? '', detail)
}

async function accepted(client: CertFiles): Promise<void> {
  const v = await verdictFor(client)
  assert.ok('identity' in v && v.identity, `expected an identity, got ${JSON.stringify(v)}`)
}

describe('chain policy reason codes', () => {
  it('are known reasons with 403', () => {
    for (const r of ['cert_path_length', 'cert_name_constraints', 'cert_weak_key', 'cert_validity_too_long'] as const) assert.equal(reasons[r].status, 403)
  })
})

describe('name constraints of CAs on the path', T, () => {
  it('accepts a dNSName inside a permitted subtree and refuses one outside it', async () => {
    await accepted(dnsGood)
    await refused(dnsOutside, 'cert_name_constraints', /dns svc\.partner-b\.example is not permitted/)
  })
  it('refuses a dNSName in an excluded subtree', async () => {
    await refused(dnsExcluded, 'cert_name_constraints', /dns bad\.partner-a\.example is excluded/)
  })
  it('checks a host-like CN as a dNSName when there is no DNS SAN', async () => {
    await accepted(cnInside)
    await refused(cnOutside, 'cert_name_constraints', /host\.partner-b\.example/)
  })
  it('applies URI constraints to the host part', async () => {
    await accepted(uriGood)
    await refused(uriOutside, 'cert_name_constraints', /^leaf: uri /)
  })
  it('applies rfc822Name constraints to email SANs', async () => {
    await accepted(emailGood)
    await refused(emailOutside, 'cert_name_constraints', /^leaf: email /)
  })
  it('applies iPAddress permitted and excluded ranges', async () => {
    await accepted(ipGood)
    await refused(ipOutside, 'cert_name_constraints', /ip 192\.168\.1\.1 is not permitted/)
    await refused(ipExcluded, 'cert_name_constraints', /ip 10\.9\.8\.7 is excluded/)
  })
  it('applies directoryName constraints to the subject DN', async () => {
    await accepted(dirGood)
    await refused(dirOutside, 'cert_name_constraints', /^leaf: dn /)
    await refused(dirLookalike, 'cert_name_constraints', /^leaf: dn CN=x\\,O=Partner A is not permitted/)
  })
  it('fails closed on critical constraints of a form it does not check, ignores them when not critical', async () => {
    await refused(ridLeaf, 'cert_name_constraints', /unsupported form/)
    await accepted(ridSoftLeaf)
  })
  it("honours a root's name constraints on the leaf below its intermediate", async () => {
    await accepted(rootGood)
    await refused(rootOutside, 'cert_name_constraints', /svc\.elsewhere\.example.*CA O=Portcullis Test,CN=nc-root/)
  })
})

describe('basic constraints and path length', T, () => {
  it('refuses a sub-CA below a pathlen:0 intermediate, accepts it below pathlen:1', async () => {
    await accepted(withinPathLen)
    await refused(overPathLen, 'cert_path_length', /CN=pl-int0 allows pathLen 0, has 1/)
  })
  it('refuses a chain through an intermediate that is not a CA', async () => {
    await refused(underNotCa, 'cert_path_length', /is not a CA \(basicConstraints cA is not TRUE\)/)
  })
  it('refuses a CA certificate used as the client certificate', async () => {
    await refused(caAsLeaf, 'cert_wrong_usage', /CA certificate/)
  })
})

describe('key strength and signature algorithms on every certificate', T, () => {
  it('refuses an RSA-1024 leaf and accepts an RSA-2048 one', async () => {
    await accepted(rsa2048Leaf)
    await refused(rsa1024Leaf, 'cert_weak_key', /^leaf: RSA key of 1024 bits/)
  })
  it('refuses a chain through an RSA-1024 intermediate', async () => {
    await refused(underRsa1024Int, 'cert_weak_key', /^CA O=Portcullis Test,CN=rsa1024-int: RSA key of 1024 bits/)
  })
  // ecdsa-with-SHA1: the test CAs have P-256 keys.
  it('refuses a SHA-1 signed leaf', async () => {
    await refused(sha1Leaf, 'cert_weak_signature', /^leaf: signature algorithm ecdsa-with-SHA1 \(1\.2\.840\.10045\.4\.1\) is not accepted/)
  })
  it('refuses a chain through a SHA-1 signed intermediate', async () => {
    await refused(underSha1Int, 'cert_weak_signature', /^CA O=Portcullis Test,CN=[^:]+: signature algorithm ecdsa-with-SHA1 \(1\.2\.840\.10045\.4\.1\) is not accepted/)
  })
})

describe('leaf lifetime', T, () => {
  it('refuses a leaf valid for longer than maxLeafValidity (default 398d) and accepts a 30-day one', async () => {
    await accepted(shortLived)
    await refused(longLived, 'cert_validity_too_long', /valid for 401 days, maximum 398/)
  })
  it('accepts the same leaf when maxLeafValidity allows it', async () => {
    current = compile({ maxLeafValidity: '500d' })
    try {
      await accepted(longLived)
    } finally {
      current = compile()
    }
  })
})
