/**
 * EST enrollment (RFC 7030) end to end, the way a partner runs it: `openssl
 * req` makes the key and CSR, curl talks to the EST server over real TLS on
 * 127.0.0.1, `openssl base64 -d | openssl pkcs7 -print_certs` unpacks the
 * answer and `openssl verify` judges it. Tokens come from the real
 * `portcullis ca token` CLI in a child process; revocation from `ca revoke`.
 * The issued certificate then connects to a real gateway listener that
 * trusts the CA's root. Storage is a real SQLite inventory.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { chmodSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { after, before, describe, test } from 'node:test'
import { connect } from 'node:tls'
import { pino } from 'pino'
import { loadConfig } from '../../src/config/load.js'
import type { PkiConfig } from '../../src/config/schema/index.js'
import { toInventoryRecord } from '../../src/control/inventory-record.js'
import { startPkiService, type PkiService } from '../../src/control/pki-service.js'
import { issueCertificate } from '../../src/pki/ca-issue.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import type { FixedClock } from '../../src/shared/clock.js'
import { openSqliteStorage, type SqliteStorage } from '../../src/storage/sqlite.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { TestPki } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { newCa, passphrase, put } from './pki-helpers.js'

const root = join(import.meta.dirname, '..', '..')
const HOUR = 3_600_000

let ca: LoadedCa
let work: string
let clock: FixedClock
let config: string
let pki: PkiConfig
let service: PkiService
/** The inventory as another process sees it (the CLI's own connection). */
let inventory: SqliteStorage
let rootFile: string
let chainFile: string
const env = { PKI_PASSPHRASE: passphrase }
const events: LogLine[] = []
const log = pino(
  { level: 'debug' },
  new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) events.push(JSON.parse(line) as LogLine)
      done()
    },
  }),
)

interface Run {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** A child process, without blocking the event loop (the EST server lives in this process). */
function run(cmd: string, args: readonly string[], runEnv: Record<string, string> = env): Promise<Run> {
  return new Promise((resolve) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 30_000, cwd: root, env: { PATH: process.env.PATH ?? '', ...runEnv } }, (err, stdout, stderr) => {
      resolve({ code: err ? Number((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

function portcullis(args: readonly string[], runEnv: Record<string, string> = env): Promise<Run> {
  return run(process.execPath, ['--import', 'tsx', join(root, 'src', 'cli', 'index.ts'), ...args], runEnv)
}

async function openssl(args: readonly string[]): Promise<Run> {
  return run('openssl', args)
}

async function newToken(partner = 'globex', ...extra: string[]): Promise<string> {
  const r = await portcullis(['ca', 'token', 'create', '--config', config, '--partner', partner, ...extra])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout.trim()
}

let seq = 0
/** A new P-256 key and a CSR for it, base64 DER as an EST client sends it. */
async function csr(subject: string, san: string | undefined): Promise<{ key: string; body: string }> {
  const n = ++seq
  const key = join(work, `key-${n}.pem`)
  const generated = await openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', key])
  assert.equal(generated.code, 0, generated.stderr)
  const der = join(work, `csr-${n}.der`)
  const made = await openssl(['req', '-new', '-key', key, '-subj', subject, ...(san ? ['-addext', `subjectAltName=${san}`] : []), '-outform', 'DER', '-out', der])
  assert.equal(made.code, 0, made.stderr)
  const body = join(work, `csr-${n}.b64`)
  assert.equal((await openssl(['base64', '-in', der, '-out', body])).code, 0)
  return { key, body }
}

interface EstAnswer {
  readonly status: number
  readonly headers: string
  readonly body: string
  /** The problem document, for refusals. */
  readonly problem: { reason?: string; rule?: string; detail?: string }
  /** PEM certificates in a 200 answer, decoded by openssl. */
  readonly certs: string
}

/** curl against the EST server; a 200 body is unpacked with openssl base64 -d | openssl pkcs7 -print_certs. */
async function est(
  op: string,
  opts: { body?: string; user?: string; bearer?: string; cert?: string; key?: string; contentType?: string; method?: string } = {},
): Promise<EstAnswer> {
  const n = ++seq
  const bodyFile = join(work, `answer-${n}.txt`)
  const headerFile = join(work, `headers-${n}.txt`)
  const args = ['-sS', '--max-time', '10', '--cacert', rootFile, '-o', bodyFile, '-D', headerFile, '-w', '%{http_code}']
  if (opts.method) args.push('-X', opts.method)
  if (opts.body) args.push('--data-binary', `@${opts.body}`, '-H', `Content-Type: ${opts.contentType ?? 'application/pkcs10'}`)
  if (opts.user !== undefined) args.push('-u', opts.user)
  if (opts.bearer) args.push('-H', `Authorization: Bearer ${opts.bearer}`)
  if (opts.cert) args.push('--cert', opts.cert, '--key', opts.key!)
  args.push(`https://127.0.0.1:${service.estPort}/.well-known/est/${op}`)
  const r = await run('curl', args)
  assert.equal(r.code, 0, r.stderr)
  const status = Number(r.stdout)
  const body = readFileSync(bodyFile, 'utf8')
  let certs = ''
  if (status === 200) {
    const der = join(work, `answer-${n}.der`)
    const decoded = await openssl(['base64', '-d', '-in', bodyFile, '-out', der])
    assert.equal(decoded.code, 0, decoded.stderr)
    const printed = await openssl(['pkcs7', '-inform', 'DER', '-in', der, '-print_certs'])
    assert.equal(printed.code, 0, printed.stderr)
    certs = printed.stdout
  }
  return { status, headers: readFileSync(headerFile, 'utf8'), body, problem: status === 200 ? {} : (JSON.parse(body) as EstAnswer['problem']), certs }
}

/** The one certificate of an enrollment answer, written to a file; with its serial (lower-case hex) and subject. */
async function issued(answer: EstAnswer): Promise<{ file: string; serial: string; subject: string; text: string }> {
  assert.equal(answer.status, 200, answer.body)
  assert.equal(answer.certs.match(/BEGIN CERTIFICATE/g)?.length, 1, 'only the issued certificate (RFC 7030 §4.2.3)')
  const file = put(work, `issued-${++seq}.pem`, answer.certs.slice(answer.certs.indexOf('-----BEGIN')))
  const text = await openssl(['x509', '-in', file, '-noout', '-serial', '-subject', '-nameopt', 'RFC2253', '-text'])
  assert.equal(text.code, 0, text.stderr)
  const serial = /^serial=([0-9A-F]+)$/m.exec(text.stdout)![1]!.toLowerCase().replace(/^0+/, '')
  const subject = /^subject=(.*)$/m.exec(text.stdout)![1]!
  return { file, serial, subject, text: text.stdout }
}

before(async () => {
  let dir: string
  ;({ ca, work, clock, dir } = await newCa())
  assert.equal(dir, join(work, 'ca'))
  rootFile = put(work, 'root.pem', ca.root.toString('pem'))
  chainFile = put(work, 'chain.pem', ca.intermediate.toString('pem'))
  // The EST server's own certificate, from the same CA (clients trust its root, which they got out of band).
  const server = await issueCertificate(ca, {
    profile: 'server',
    subject: 'CN=est.localhost',
    sans: [
      { type: 'dns', value: 'localhost' },
      { type: 'ip', value: '127.0.0.1' },
    ],
    plainKey: true,
    clock,
  })
  put(work, 'est-server.pem', server.certPem + ca.intermediate.toString('pem'))
  chmodSync(put(work, 'est-server.key', server.keyPem), 0o600)
  config = put(
    work,
    'gateway.yaml',
    `version: 1
listeners:
  - name: edge
    port: 8443
    tls:
      certificates: [{ cert: { pem: "-----BEGIN CERTIFICATE-----" }, key: { pem: "-----BEGIN CERTIFICATE-----" } }]
      clientAuth: { mode: none }
upstreams: {}
pki:
  caDir: ./ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: ./inventory.db }
  revocationSync: 200ms
  partners:
    globex:
      dnsNames: ["*.globex.test"]
      maxLifetime: 1d
    initech:
      profiles: [spiffe]
      spiffePrefixes: ["spiffe://initech.test/devices"]
  est:
    port: 0
    tls:
      cert: { file: ./est-server.pem }
      key: { file: ./est-server.key }
    tokenTtl: 1h
    maxTokenTtl: 2d
    requestTimeout: 2s
`,
  )
  const loaded = loadConfig(readFileSync(config, 'utf8'), config, { source: { baseDir: work, env }, readFiles: false })
  assert.ok(loaded.ok, JSON.stringify(!loaded.ok && loaded.issues))
  pki = loaded.config.pki!
  inventory = openSqliteStorage({ path: join(work, 'inventory.db') })
  service = await startPkiService(pki, { source: { baseDir: work, env }, clock, log, revocation: new RevocationSet() })
})

after(async () => {
  await service?.close()
  await inventory?.close()
})

describe('EST server', { timeout: 300_000 }, () => {
  /** The device enrolled by token; later tests renew and revoke it. */
  let device: { key: string; cert: string; serial: string; subject: string }

  test('cacerts answers the issuing CA and the root as base64 certs-only PKCS#7', async () => {
    const answer = await est('cacerts')
    assert.equal(answer.status, 200, answer.body)
    assert.match(answer.headers, /^content-type: application\/pkcs7-mime\r$/im)
    const subjects = [...answer.certs.matchAll(/^subject=(.*)$/gm)].map((m) => m[1])
    assert.deepEqual(subjects, ['CN = Portcullis Test Issuing, O = Portcullis Test', 'CN = Portcullis Test Root, O = Portcullis Test'])
  })

  test('simpleenroll with a one-time token (HTTP Basic password): openssl verifies the certificate, the inventory records it for the partner', async () => {
    const token = await newToken()
    const { key, body } = await csr('/CN=dev1.globex.test', 'DNS:dev1.globex.test')
    const answer = await est('simpleenroll', { body, user: `:${token}` })
    assert.match(answer.headers, /^content-type: application\/pkcs7-mime; smime-type=certs-only\r$/im)
    const cert = await issued(answer)
    const verified = await openssl(['verify', '-CAfile', rootFile, '-untrusted', chainFile, '-purpose', 'sslclient', cert.file])
    assert.equal(verified.code, 0, verified.stderr + verified.stdout)
    assert.equal(cert.subject, 'CN=dev1.globex.test,O=globex')
    assert.match(cert.text, /DNS:dev1\.globex\.test/)
    const notBefore = Date.parse(/Not Before: (.*)/.exec(cert.text)![1]!)
    const notAfter = Date.parse(/Not After : (.*)/.exec(cert.text)![1]!)
    assert.ok(notAfter - notBefore <= 24 * HOUR + 5 * 60_000 + 1000, 'the partner policy caps it at 1 day (plus the 5-minute backdate)')

    const record = await inventory.inventory.get(cert.serial)
    assert.deepEqual(record && [record.partner, record.profile, record.status], ['globex', 'partner', 'valid'])
    const line = events.find((e) => e.msg === 'est: certificate issued' && e.serial === cert.serial)
    assert.deepEqual(line && [line.method, line.partner, line.client], ['token', 'globex', '127.0.0.1'])
    assert.ok(!events.some((e) => JSON.stringify(e).includes(token)), 'the token is never logged')
    device = { key, cert: cert.file, serial: cert.serial, subject: cert.subject }

    const again = await est('simpleenroll', { body: (await csr('/CN=dev9.globex.test', 'DNS:dev9.globex.test')).body, user: `:${token}` })
    assert.equal(again.status, 401)
    assert.equal(again.problem.reason, 'est_token_used')
  })

  test('the enrolled certificate connects to a gateway listener that trusts the CA root', async () => {
    const harness = new TestPki()
    const harnessRoot = harness.root('gw-root')
    const server = harness.server('gateway', harnessRoot)
    const upstream: TestUpstream = await startUpstream()
    let gw: TestGateway | undefined
    try {
      gw = await startGateway({
        yaml: `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${rootFile} }] }
identities:
  dev1: [{ dns: dev1.globex.test }]
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: devices
    match: { path: { prefix: /r } }
    access: { identities: [dev1] }
    upstream: app
`,
      })
      // The device presents its certificate and the issuing CA from /cacerts.
      const presented = put(work, 'dev1-presented.pem', readFileSync(device.cert, 'utf8') + ca.intermediate.toString('pem'))
      const r = await run('curl', ['-sS', '--max-time', '10', '--cacert', harnessRoot.cert, '--cert', presented, '--key', device.key, '-o', '/dev/null', '-w', '%{http_code}', `https://127.0.0.1:${gw.port()}/r`])
      assert.equal(r.code, 0, r.stderr)
      assert.equal(r.stdout, '200')
    } finally {
      await gw?.close()
      await upstream.close()
    }
  })

  test('Authorization: Bearer works too; a CSR outside the partner policy is refused naming the rule and does not spend the token', async () => {
    const token = await newToken()
    const outside = await est('simpleenroll', { body: (await csr('/CN=api.evil.test', 'DNS:api.evil.test')).body, bearer: token })
    assert.equal(outside.status, 403)
    assert.equal(outside.problem.reason, 'est_csr_refused')
    assert.equal(outside.problem.rule, 'dns_name_not_allowed')
    assert.equal(outside.problem.detail, 'api.evil.test')
    const fixed = await est('simpleenroll', { body: (await csr('/CN=dev2.globex.test', 'DNS:dev2.globex.test')).body, bearer: token })
    assert.equal((await issued(fixed)).subject, 'CN=dev2.globex.test,O=globex')
  })

  test('a token is for its partner and profile: a SPIFFE partner gets an SVID', async () => {
    const token = await newToken('initech', '--ttl', '10m')
    const answer = await est('simpleenroll', { body: (await csr('/O=initech', 'URI:spiffe://initech.test/devices/d7')).body, user: `initech:${token}` })
    const cert = await issued(answer)
    assert.match(cert.text, /URI:spiffe:\/\/initech\.test\/devices\/d7/)
    assert.match(cert.text, /TLS Web Client Authentication, TLS Web Server Authentication/)
    assert.equal((await inventory.inventory.get(cert.serial))?.profile, 'spiffe')
  })

  test('an expired token, an unknown token, no credentials and a wrong content type are refused with their reasons', async () => {
    const token = await newToken('globex', '--ttl', '30m')
    const { body } = await csr('/CN=dev3.globex.test', 'DNS:dev3.globex.test')
    clock.set(Date.now() + 31 * 60_000)
    try {
      const expired = await est('simpleenroll', { body, user: `:${token}` })
      assert.equal(expired.status, 401)
      assert.equal(expired.problem.reason, 'est_token_expired')
    } finally {
      clock.set(Date.now())
    }
    const unknown = await est('simpleenroll', { body, user: `:pct_est_${'x'.repeat(43)}` })
    assert.equal(unknown.problem.reason, 'est_token_invalid')
    const anonymous = await est('simpleenroll', { body })
    assert.equal(anonymous.status, 401)
    assert.equal(anonymous.problem.reason, 'est_auth_required')
    assert.match(anonymous.headers, /^www-authenticate: Basic realm="portcullis-est"/im)
    const wrongType = await est('simpleenroll', { body, user: `:${await newToken()}`, contentType: 'application/octet-stream' })
    assert.equal(wrongType.status, 415)
    assert.equal(wrongType.problem.reason, 'est_unsupported_media_type')
    const pem = put(work, 'not-base64.txt', '-----BEGIN CERTIFICATE REQUEST-----\n')
    const malformed = await est('simpleenroll', { body: pem, user: `:${await newToken()}` })
    assert.equal(malformed.status, 400)
    assert.equal(malformed.problem.reason, 'est_csr_malformed')
    const notFound = await est('serverkeygen', { body, user: ':x' })
    assert.equal(notFound.problem.reason, 'route_not_found')
    const wrongMethod = await est('cacerts', { method: 'POST' })
    assert.equal(wrongMethod.status, 405)
    assert.match(wrongMethod.headers, /^allow: GET\r$/im)
  })

  test('limits: a body announced over 64 KiB is 413 before it is read; a client trickling its headers is cut off after requestTimeout', async () => {
    // A raw client announces the size and sends nothing: the answer must come before any body is read.
    const token = await newToken()
    const tooBig = await new Promise<string>((resolve, reject) => {
      let text = ''
      const socket = connect({ host: '127.0.0.1', port: service.estPort!, ca: readFileSync(rootFile), servername: 'localhost' }, () => {
        socket.write(
          `POST /.well-known/est/simpleenroll HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/pkcs10\r\nContent-Length: ${70 * 1024}\r\n\r\n`,
        )
      })
      socket.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')))
      socket.on('close', () => resolve(text))
      socket.on('error', reject)
      setTimeout(() => reject(new Error(`no answer: ${text}`)), 8000).unref()
    })
    assert.match(tooBig, /^HTTP\/1\.1 413 /)
    assert.match(tooBig, /"reason":"payload_too_large"/)
    assert.match(tooBig, /^connection: close\r$/im)
    const stillThere = await est('simpleenroll', { body: (await csr('/CN=dev6.globex.test', 'DNS:dev6.globex.test')).body, bearer: token })
    assert.equal(stillThere.status, 200, 'the token was not spent')

    const started = Date.now()
    const closedAfter = await new Promise<number>((resolve, reject) => {
      const socket = connect({ host: '127.0.0.1', port: service.estPort!, ca: readFileSync(rootFile), servername: 'localhost' }, () => {
        socket.write('GET /.well-known/est/cacerts HTTP/1.1\r\nHost: localhost\r\n')
        const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 200)
        socket.on('close', () => {
          clearInterval(drip)
          resolve(Date.now() - started)
        })
      })
      socket.on('error', () => undefined)
      setTimeout(() => reject(new Error('still open after 8 s')), 8000).unref()
    })
    assert.ok(closedAfter >= 1500 && closedAfter < 4000, `closed after ${closedAfter} ms (requestTimeout 2s)`)
  })

  test('simplereenroll with the current certificate over mTLS: new serial, same subject, same partner and profile', async () => {
    const { key, body } = await csr('/O=globex/CN=dev1.globex.test', 'DNS:dev1.globex.test')
    const answer = await est('simplereenroll', { body, cert: device.cert, key: device.key })
    const renewed = await issued(answer)
    assert.notEqual(renewed.serial, device.serial)
    assert.equal(renewed.subject, device.subject)
    const verified = await openssl(['verify', '-CAfile', rootFile, '-untrusted', chainFile, renewed.file])
    assert.equal(verified.code, 0, verified.stderr)
    const record = await inventory.inventory.get(renewed.serial)
    assert.deepEqual(record && [record.partner, record.profile], ['globex', 'partner'])
    assert.ok(events.some((e) => e.msg === 'est: certificate issued' && e.method === 'reenroll' && e.previousSerial === device.serial))
    device = { ...device, key, cert: renewed.file, serial: renewed.serial }
  })

  test('approved partner: a valid partner certificate enrolls a new name within its policy, without a token', async () => {
    const answer = await est('simpleenroll', { body: (await csr('/CN=dev4.globex.test', 'DNS:dev4.globex.test')).body, cert: device.cert, key: device.key })
    const cert = await issued(answer)
    assert.equal(cert.subject, 'CN=dev4.globex.test,O=globex')
    assert.ok(events.some((e) => e.msg === 'est: certificate issued' && e.method === 'partner_certificate' && e.serial === cert.serial))
    const outside = await est('simpleenroll', { body: (await csr('/CN=x.initech.test', 'DNS:x.initech.test')).body, cert: device.cert, key: device.key })
    assert.equal(outside.problem.rule, 'dns_name_not_allowed')
  })

  test('a certificate of ours issued to no partner is not an approved partner', async () => {
    const ops = await issueCertificate(ca, { profile: 'client', subject: 'CN=ops', plainKey: true, clock })
    await inventory.inventory.add(toInventoryRecord(ops.record))
    const cert = put(work, 'ops.crt', ops.certPem)
    const key = put(work, 'ops.key', ops.keyPem)
    const answer = await est('simpleenroll', { body: (await csr('/CN=dev5.globex.test', 'DNS:dev5.globex.test')).body, cert, key })
    assert.equal(answer.status, 403)
    assert.equal(answer.problem.reason, 'est_partner_unknown')
  })

  test('simplereenroll refuses a changed subject or SAN, naming the difference', async () => {
    const subject = await est('simplereenroll', { body: (await csr('/O=globex/CN=dev7.globex.test', 'DNS:dev1.globex.test')).body, cert: device.cert, key: device.key })
    assert.equal(subject.status, 400)
    assert.equal(subject.problem.reason, 'est_reenroll_mismatch')
    assert.match(subject.problem.detail ?? '', /subject "O=globex, CN=dev7.globex.test" differs/)
    const san = await est('simplereenroll', { body: (await csr('/O=globex/CN=dev1.globex.test', 'DNS:dev1.globex.test,DNS:extra.globex.test')).body, cert: device.cert, key: device.key })
    assert.equal(san.problem.reason, 'est_reenroll_mismatch')
    assert.match(san.problem.detail ?? '', /subjectAltName/)
  })

  test('simplereenroll refuses no client certificate, one from another CA, and an expired one', async () => {
    const { body } = await csr('/O=globex/CN=dev1.globex.test', 'DNS:dev1.globex.test')
    const none = await est('simplereenroll', { body, user: `:${await newToken()}` })
    assert.equal(none.status, 401)
    assert.equal(none.problem.reason, 'client_cert_required')

    const other = new TestPki()
    const otherRoot = other.root('other-root')
    const stranger = other.client('dev1.globex.test', otherRoot, { subject: '/O=globex/CN=dev1.globex.test', san: 'DNS:dev1.globex.test' })
    const foreign = await est('simplereenroll', { body, cert: stranger.cert, key: stranger.key })
    assert.equal(foreign.status, 403)
    assert.equal(foreign.problem.reason, 'cert_unknown_ca')

    clock.set(Date.now() + 2 * 24 * HOUR)
    try {
      const expired = await est('simplereenroll', { body, cert: device.cert, key: device.key })
      assert.equal(expired.status, 403)
      assert.equal(expired.problem.reason, 'cert_expired')
    } finally {
      clock.set(Date.now())
    }
  })

  test('simplereenroll refuses a certificate revoked with `ca revoke`', async () => {
    const r = await portcullis(['ca', 'revoke', device.serial, '--config', config, '--reason', 'keyCompromise'])
    assert.equal(r.code, 0, r.stderr)
    const { body } = await csr('/O=globex/CN=dev1.globex.test', 'DNS:dev1.globex.test')
    const answer = await est('simplereenroll', { body, cert: device.cert, key: device.key })
    assert.equal(answer.status, 403)
    assert.equal(answer.problem.reason, 'cert_revoked')
    const enroll = await est('simpleenroll', { body, cert: device.cert, key: device.key })
    assert.equal(enroll.problem.reason, 'cert_revoked', 'nor is it an approved partner any more')
  })
})

describe('portcullis ca token', { timeout: 180_000 }, () => {
  test('create prints the token alone on stdout; list shows it by id; revoke makes it unusable', async () => {
    const r = await portcullis(['ca', 'token', 'create', '--config', config, '--partner', 'globex', '--ttl', '2h'])
    assert.equal(r.code, 0, r.stderr)
    const token = r.stdout.trim()
    assert.match(token, /^pct_est_[A-Za-z0-9_-]{43}$/)
    const id = /token ([0-9a-f]{16}) for partner globex, profile partner/.exec(r.stderr)?.[1]
    assert.ok(id, r.stderr)
    const stored = await inventory.kv.list('est/')
    for (const { key } of stored) assert.ok(!(await inventory.kv.get(key))!.value.toString().includes(token), 'only the hash is stored')

    const listed = await portcullis(['ca', 'token', 'list', '--config', config, '--json'])
    assert.equal(listed.code, 0, listed.stderr)
    const mine = listed.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l) as { id: string; status: string; partner: string }).find((t) => t.id === id)
    assert.deepEqual(mine && [mine.partner, mine.status], ['globex', 'active'])
    assert.ok(!listed.stdout.includes(token))

    const revoked = await portcullis(['ca', 'token', 'revoke', id.slice(0, 10), '--config', config])
    assert.equal(revoked.code, 0, revoked.stderr)
    const answer = await est('simpleenroll', { body: (await csr('/CN=dev8.globex.test', 'DNS:dev8.globex.test')).body, user: `:${token}` })
    assert.equal(answer.problem.reason, 'est_token_invalid')
  })

  test('create refuses an unknown partner, a profile outside its policy, a TTL above maxTokenTtl, and a wrong CA passphrase', async () => {
    const unknown = await portcullis(['ca', 'token', 'create', '--config', config, '--partner', 'nobody'])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /unknown partner "nobody"; known partners: globex, initech/)
    const profile = await portcullis(['ca', 'token', 'create', '--config', config, '--partner', 'globex', '--profile', 'server'])
    assert.equal(profile.code, 1)
    assert.match(profile.stderr, /may not request profile "server"/)
    const ttl = await portcullis(['ca', 'token', 'create', '--config', config, '--partner', 'globex', '--ttl', '3d'])
    assert.equal(ttl.code, 1)
    assert.match(ttl.stderr, /maxTokenTtl/)
    const usage = await portcullis(['ca', 'token', 'create', '--config', config])
    assert.equal(usage.code, 2)
    const before = (await inventory.kv.list('est/tokens/')).length
    const refused = await portcullis(['ca', 'token', 'create', '--config', config, '--partner', 'globex'], { PKI_PASSPHRASE: 'not-the-passphrase-000000' })
    assert.equal(refused.code, 1)
    assert.match(refused.stderr, /ca_passphrase_invalid/)
    assert.equal(refused.stdout, '')
    assert.equal((await inventory.kv.list('est/tokens/')).length, before, 'nothing was stored')
  })
})
