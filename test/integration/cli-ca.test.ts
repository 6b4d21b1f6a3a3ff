/**
 * `portcullis ca` as an operator runs it, in child processes, against a
 * gateway config with a `pki:` section and a SQLite inventory. openssl is the
 * independent judge of what the CA writes (`openssl verify`) and makes the
 * partner CSRs (`openssl req`), so our own code never grades itself.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { execFile } from 'node:child_process'
import { existsSync, mkdtempSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { before, describe, test } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')
const cli = ['--import', 'tsx', join(root, 'src', 'cli', 'index.ts')]
const passphrase = 'correct-horse-battery-staple-42'

interface Result {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

async function portcullis(args: string[], env: Record<string, string> = { PORTCULLIS_CA_PASSPHRASE: passphrase }): Promise<Result> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...cli, ...args], { cwd: root, env: { PATH: process.env.PATH ?? '', ...env } })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

async function openssl(args: string[]): Promise<Result> {
  try {
    const { stdout, stderr } = await run('openssl', args)
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

const listener = [
  'version: 1',
  'listeners:',
  '  - name: edge',
  '    port: 8443',
  '    tls:',
  '      certificates: [{ cert: { pem: "-----BEGIN CERTIFICATE-----" }, key: { pem: "-----BEGIN CERTIFICATE-----" } }]',
  '      clientAuth: { mode: none }',
  'upstreams: {}',
]

/** A temp folder with gateway.yaml whose pki: section uses ./ca and ./inventory.db. */
function workspace(): { dir: string; config: string } {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-ca-'))
  const config = join(dir, 'gateway.yaml')
  const text = [
    ...listener,
    'pki:',
    '  caDir: ./ca',
    '  passphrase: { env: PORTCULLIS_CA_PASSPHRASE }',
    '  inventory: { sqlite: ./inventory.db }',
    '  http: { host: 127.0.0.1, port: 8089 }',
    '  partners:',
    '    acme:',
    '      dnsNames: ["*.acme.example"]',
    '      maxLifetime: 30d',
    '',
  ].join('\n')
  writeFileSync(config, text)
  return { dir, config }
}

async function makeCsr(dir: string, name: string, cn: string, san: string): Promise<string> {
  const csr = join(dir, `${name}.csr`)
  const made = await openssl([
    'req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-keyout', join(dir, `${name}.key`), '-subj', `/CN=${cn}`, '-addext', `subjectAltName=${san}`, '-out', csr,
  ])
  assert.equal(made.code, 0, made.stderr)
  return csr
}

interface Listed {
  readonly serial: string
  readonly subject: string
  readonly profile: string
  readonly partner?: string
  readonly status: string
  readonly sans: string[]
  readonly revocationReason?: string
}

async function list(config: string, ...filters: string[]): Promise<Listed[]> {
  const r = await portcullis(['ca', 'list', '--config', config, '--json', ...filters])
  assert.equal(r.code, 0, r.stderr)
  return r.stdout
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Listed)
}

function hashes(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(dir).sort()) out[name] = createHash('sha256').update(readFileSync(join(dir, name))).digest('hex')
  return out
}

function serialOf(stdout: string): string {
  const m = /serial ([0-9a-f]+)/.exec(stdout)
  assert.ok(m, stdout)
  return m[1]!
}

describe('portcullis ca', { timeout: 300_000 }, () => {
  let ws: { dir: string; config: string }
  let caDir: string
  let verifyArgs: string[]

  before(async () => {
    ws = workspace()
    caDir = join(ws.dir, 'ca')
    const r = await portcullis(['ca', 'init', '--config', ws.config, '--root-subject', '/O=Acme/CN=Acme Test Root'])
    assert.equal(r.code, 0, r.stderr)
    verifyArgs = ['verify', '-CAfile', join(caDir, 'root.crt'), '-untrusted', join(caDir, 'intermediate.crt')]
  })

  test('init writes encrypted 0600 keys and the root subject given in OpenSSL slash form', async () => {
    for (const key of ['root.key', 'intermediate.key']) {
      assert.equal(statSync(join(caDir, key)).mode & 0o777, 0o600)
      assert.match(readFileSync(join(caDir, key), 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/)
    }
    const subject = await openssl(['x509', '-in', join(caDir, 'root.crt'), '-noout', '-subject', '-nameopt', 'RFC2253'])
    assert.match(subject.stdout, /^subject=CN=Acme Test Root,O=Acme$/m)
  })

  test('init works on a fresh install whose listener names managed certificate files that do not exist yet', async () => {
    const fresh = mkdtempSync(join(tmpdir(), 'portcullis-cli-ca-fresh-'))
    const config = join(fresh, 'gateway.yaml')
    writeFileSync(config, readFileSync(ws.config, 'utf8').replace(
      'certificates: [{ cert: { pem: "-----BEGIN CERTIFICATE-----" }, key: { pem: "-----BEGIN CERTIFICATE-----" } }]',
      'certificates: [{ cert: { file: ./certs/edge.crt }, key: { file: ./certs/edge.key } }]',
    ))
    const r = await portcullis(['ca', 'init', '--config', config])
    assert.equal(r.code, 0, r.stderr)
    assert.ok(statSync(join(fresh, 'ca', 'intermediate.crt')).isFile())
    // validate still reads every referenced file, and says which one is missing.
    const v = await portcullis(['validate', config])
    assert.equal(v.code, 1)
    assert.match(v.stderr, /edge\.crt/)
  })

  test('init refuses to overwrite an existing CA and changes nothing', async () => {
    const before = hashes(caDir)
    const r = await portcullis(['ca', 'init', '--config', ws.config])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /ca_exists/)
    assert.deepEqual(hashes(caDir), before)
  })

  test('issue writes a server certificate openssl verifies, an encrypted 0600 key, and an inventory record', async () => {
    const out = join(ws.dir, 'server-out')
    const r = await portcullis(['ca', 'issue', '--config', ws.config, '--profile', 'server', '--subject', 'api.internal', '--san', 'DNS:api.internal', '--out-dir', out])
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /encrypted with the CA passphrase/)
    const verified = await openssl([...verifyArgs, '-purpose', 'sslserver', join(out, 'cert.pem')])
    assert.equal(verified.code, 0, verified.stderr)
    assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600)
    const key = await openssl(['pkey', '-in', join(out, 'key.pem'), '-passin', `pass:${passphrase}`, '-pubout'])
    assert.equal(key.code, 0, key.stderr)
    const crl = await openssl(['x509', '-in', join(out, 'cert.pem'), '-noout', '-ext', 'crlDistributionPoints'])
    assert.match(crl.stdout, /http:\/\/127\.0\.0\.1:8089\/crl/)
    const serial = serialOf(r.stdout)
    const listed = (await list(ws.config, '--profile', 'server')).find((c) => c.serial === serial)
    assert.deepEqual(listed && { profile: listed.profile, status: listed.status, sans: listed.sans }, { profile: 'server', status: 'valid', sans: ['DNS:api.internal'] })
  })

  test('issue --plain-key writes an unencrypted key and says so; it never overwrites', async () => {
    const out = join(ws.dir, 'client-out')
    const args = ['ca', 'issue', '--config', ws.config, '--profile', 'client', '--subject', 'batch-job', '--out-dir', out, '--plain-key']
    const r = await portcullis(args)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /NOT encrypted/)
    assert.match(readFileSync(join(out, 'key.pem'), 'utf8'), /BEGIN PRIVATE KEY/)
    const verified = await openssl([...verifyArgs, '-purpose', 'sslclient', join(out, 'cert.pem')])
    assert.equal(verified.code, 0, verified.stderr)
    const before = hashes(out)
    const again = await portcullis(args)
    assert.equal(again.code, 1)
    assert.deepEqual(hashes(out), before)
  })

  test('issue --key-passphrase-env encrypts the key with its own passphrase, not the CA one; a short or missing one changes nothing', async () => {
    const keyPassphrase = 'a passphrase only the partner holds'
    const env = { PORTCULLIS_CA_PASSPHRASE: passphrase, PARTNER_KEY_PASS: keyPassphrase, SHORT_PASS: 'short' }
    const base = ['ca', 'issue', '--config', ws.config, '--profile', 'partner', '--partner', 'acme', '--subject', 'device-7']
    const before = (await list(ws.config)).length

    const missing = await portcullis([...base, '--out-dir', join(ws.dir, 'k-missing'), '--key-passphrase-env', 'NOT_SET'], env)
    assert.equal(missing.code, 1)
    assert.match(missing.stderr, /--key-passphrase-env: .*NOT_SET/)
    const short = await portcullis([...base, '--out-dir', join(ws.dir, 'k-short'), '--key-passphrase-env', 'SHORT_PASS'], env)
    assert.equal(short.code, 1)
    assert.match(short.stderr, /--key-passphrase-env: .*at least \d+ characters/)
    const both = await portcullis([...base, '--out-dir', join(ws.dir, 'k-both'), '--key-passphrase-env', 'PARTNER_KEY_PASS', '--plain-key'], env)
    assert.equal(both.code, 2)
    assert.equal((await list(ws.config)).length, before, 'nothing issued or recorded by the refused runs')
    assert.equal(existsSync(join(ws.dir, 'k-missing')), false)

    const out = join(ws.dir, 'k-own')
    const r = await portcullis([...base, '--out-dir', out, '--key-passphrase-env', 'PARTNER_KEY_PASS'], env)
    assert.equal(r.code, 0, r.stderr)
    assert.match(r.stdout, /encrypted with the passphrase from \$PARTNER_KEY_PASS/)
    assert.equal(statSync(join(out, 'key.pem')).mode & 0o777, 0o600)
    const own = await openssl(['pkey', '-in', join(out, 'key.pem'), '-passin', `pass:${keyPassphrase}`, '-noout'])
    assert.equal(own.code, 0, own.stderr)
    const withCa = await openssl(['pkey', '-in', join(out, 'key.pem'), '-passin', `pass:${passphrase}`, '-noout'])
    assert.notEqual(withCa.code, 0, 'the CA passphrase does not open it')

    const fileOut = join(ws.dir, 'k-file')
    const passFile = join(ws.dir, 'key-pass.txt')
    writeFileSync(passFile, `${keyPassphrase}\n`, { mode: 0o600 })
    const fromFile = await portcullis([...base, '--subject', 'device-8', '--out-dir', fileOut, '--key-passphrase-file', passFile], env)
    assert.equal(fromFile.code, 0, fromFile.stderr)
    assert.equal((await openssl(['pkey', '-in', join(fileOut, 'key.pem'), '-passin', `pass:${keyPassphrase}`, '-noout'])).code, 0)
  })

  test('sign: an openssl CSR within the partner policy is signed, verified by openssl and listed under the partner', async () => {
    const csr = await makeCsr(ws.dir, 'good', 'svc.acme.example', 'DNS:svc.acme.example')
    const out = join(ws.dir, 'good.crt')
    const r = await portcullis(['ca', 'sign', csr, '--config', ws.config, '--partner', 'acme', '--validity', '7d', '--out', out])
    assert.equal(r.code, 0, r.stderr)
    const verified = await openssl([...verifyArgs, '-purpose', 'sslclient', out])
    assert.equal(verified.code, 0, verified.stderr)
    const subject = await openssl(['x509', '-in', out, '-noout', '-subject', '-nameopt', 'RFC2253'])
    assert.match(subject.stdout, /CN=svc\.acme\.example,O=acme/)
    const serial = serialOf(r.stdout)
    const listed = await list(ws.config, '--partner', 'acme')
    assert.ok(listed.some((c) => c.serial === serial && c.partner === 'acme' && c.profile === 'partner'))
    assert.ok(listed.every((c) => c.partner === 'acme'))
  })

  test('sign: a CSR outside the partner policy exits 3 naming the rule, writes nothing and records nothing', async () => {
    const csr = await makeCsr(ws.dir, 'evil', 'login.bank.example', 'DNS:login.bank.example')
    const out = join(ws.dir, 'evil.crt')
    const countBefore = (await list(ws.config)).length
    const r = await portcullis(['ca', 'sign', csr, '--config', ws.config, '--partner', 'acme', '--out', out])
    assert.equal(r.code, 3)
    assert.match(r.stderr, /^refused: dns_name_not_allowed: /m)
    assert.equal(existsSync(out), false)
    assert.equal((await list(ws.config)).length, countBefore)
  })

  test('sign: a lifetime above the partner maximum exits 3 with lifetime_too_long', async () => {
    const csr = await makeCsr(ws.dir, 'long', 'long.acme.example', 'DNS:long.acme.example')
    const r = await portcullis(['ca', 'sign', csr, '--config', ws.config, '--partner', 'acme', '--validity', '60d', '--out', join(ws.dir, 'long.crt')])
    assert.equal(r.code, 3)
    assert.match(r.stderr, /^refused: lifetime_too_long: /m)
  })

  test('sign: an unknown partner fails (exit 1) listing the known ones; a missing --partner is a usage error (exit 2)', async () => {
    const csr = join(ws.dir, 'good.csr')
    const unknown = await portcullis(['ca', 'sign', csr, '--config', ws.config, '--partner', 'globex', '--out', join(ws.dir, 'x.crt')])
    assert.equal(unknown.code, 1)
    assert.match(unknown.stderr, /known partners: acme/)
    const usage = await portcullis(['ca', 'sign', csr, '--config', ws.config, '--out', join(ws.dir, 'x.crt')])
    assert.equal(usage.code, 2)
  })

  test('list --expiring-within finds a short-lived certificate and leaves out long-lived ones', async () => {
    const r = await portcullis(['ca', 'issue', '--config', ws.config, '--profile', 'client', '--subject', 'short-lived', '--validity', '2d', '--out-dir', join(ws.dir, 'short'), '--plain-key'])
    assert.equal(r.code, 0, r.stderr)
    const serial = serialOf(r.stdout)
    const soon = await list(ws.config, '--expiring-within', '3d')
    assert.deepEqual(soon.map((c) => c.serial), [serial])
    const later = await list(ws.config, '--expiring-within', '365d')
    assert.ok(later.length > 1)
    const table = await portcullis(['ca', 'list', '--config', ws.config, '--expiring-within', '3d'])
    assert.equal(table.code, 0)
    assert.match(table.stdout, /^SERIAL\s+SUBJECT\s+PROFILE\s+PARTNER\s+NOT AFTER\s+LAST SEEN\s+STATUS$/m)
    assert.match(table.stdout, new RegExp(`^${serial}\\s+CN=short-lived\\s+client\\s+-\\s+\\S+\\s+never\\s+valid$`, 'm'))
  })

  test('revoke marks the record revoked; list shows it; repeating it is harmless; unknown serials fail', async () => {
    const r = await portcullis(['ca', 'issue', '--config', ws.config, '--profile', 'client', '--subject', 'to-revoke', '--out-dir', join(ws.dir, 'revoke'), '--plain-key'])
    const serial = serialOf(r.stdout)
    const revoked = await portcullis(['ca', 'revoke', serial, '--config', ws.config, '--reason', 'keyCompromise'])
    assert.equal(revoked.code, 0, revoked.stderr)
    assert.match(revoked.stdout, /inventory/)
    const listed = await list(ws.config, '--status', 'revoked')
    assert.deepEqual(listed.map((c) => [c.serial, c.status, c.revocationReason]), [[serial, 'revoked', 'keyCompromise']])
    assert.ok(!(await list(ws.config, '--status', 'valid')).some((c) => c.serial === serial))

    const again = await portcullis(['ca', 'revoke', serial.toUpperCase(), '--config', ws.config, '--reason', 'keyCompromise'])
    assert.equal(again.code, 0)
    assert.match(again.stdout, /already revoked/)
    const unknown = await portcullis(['ca', 'revoke', 'abcdef0123', '--config', ws.config, '--reason', 'superseded'])
    assert.equal(unknown.code, 1)
    const badReason = await portcullis(['ca', 'revoke', serial, '--config', ws.config, '--reason', 'certificateHold'])
    assert.equal(badReason.code, 2)
  })

  test('a wrong passphrase exits 1 with ca_passphrase_invalid and changes neither the CA, the inventory nor the output', async () => {
    const wrong = { PORTCULLIS_CA_PASSPHRASE: 'this-is-not-the-passphrase' }
    const caBefore = hashes(caDir)
    const inventoryBefore = await list(ws.config)
    const out = join(ws.dir, 'wrong-out')
    const attempts = [
      ['ca', 'issue', '--config', ws.config, '--profile', 'server', '--subject', 'x.internal', '--san', 'DNS:x.internal', '--out-dir', out],
      ['ca', 'sign', join(ws.dir, 'good.csr'), '--config', ws.config, '--partner', 'acme', '--out', join(ws.dir, 'wrong.crt')],
      ['ca', 'revoke', inventoryBefore[0]!.serial, '--config', ws.config, '--reason', 'superseded'],
      ['ca', 'export-root', '--config', ws.config, '--out', join(ws.dir, 'wrong-root.key')],
    ]
    for (const args of attempts) {
      const r = await portcullis(args, wrong)
      assert.equal(r.code, 1, `${args[1]}: ${r.stderr}`)
      assert.match(r.stderr, /ca_passphrase_invalid/, args[1])
    }
    assert.deepEqual(hashes(caDir), caBefore)
    assert.deepEqual(await list(ws.config), inventoryBefore)
    assert.equal(existsSync(out), false)
    assert.equal(existsSync(join(ws.dir, 'wrong.crt')), false)
    assert.equal(existsSync(join(ws.dir, 'wrong-root.key')), false)
  })

  test('a config without pki: fails naming the missing section; unknown flags are usage errors', async () => {
    const config = join(ws.dir, 'no-pki.yaml')
    writeFileSync(config, listener.join('\n') + '\n')
    const r = await portcullis(['ca', 'list', '--config', config])
    assert.equal(r.code, 1)
    assert.match(r.stderr, /pki:/)
    const typo = await portcullis(['ca', 'list', '--config', ws.config, '--partnr', 'acme'])
    assert.equal(typo.code, 2)
  })

  test('export-root moves the root key offline (0600, still encrypted) and issuing keeps working', async () => {
    const target = join(ws.dir, 'offline-root.key')
    const keyBefore = readFileSync(join(caDir, 'root.key'))
    const r = await portcullis(['ca', 'export-root', '--config', ws.config, '--out', target])
    assert.equal(r.code, 0, r.stderr)
    assert.equal(existsSync(join(caDir, 'root.key')), false)
    assert.deepEqual(readFileSync(target), keyBefore)
    assert.equal(statSync(target).mode & 0o777, 0o600)

    const out = join(ws.dir, 'after-export')
    const issued = await portcullis(['ca', 'issue', '--config', ws.config, '--profile', 'server', '--subject', 'later.internal', '--san', 'DNS:later.internal', '--out-dir', out])
    assert.equal(issued.code, 0, issued.stderr)
    const verified = await openssl([...verifyArgs, join(out, 'cert.pem')])
    assert.equal(verified.code, 0, verified.stderr)
  })
})
