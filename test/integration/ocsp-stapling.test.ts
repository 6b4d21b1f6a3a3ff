/**
 * OCSP stapling end to end: a CA made by initCa whose OCSP URL is the PKI
 * service's own plain-HTTP responder, a listener serving a managed server
 * certificate from that CA, and `openssl s_client -status` as the judge of
 * what the handshake staples (TLS 1.3 and 1.2, ALPN h2 and http/1.1). The
 * stapled bytes are also checked by `openssl ocsp -respin` against the root.
 * Then `portcullis ca revoke` (the real CLI, in a child process) of the
 * server certificate: after the background refresh nothing is stapled and
 * the error is logged once. A responder that is down or hangs costs the
 * handshake nothing or at most the first-response wait.
 */
import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { X509Certificate } from 'node:crypto'
import { readFileSync, writeFileSync } from 'node:fs'
import { createServer as createHttpServer, type Server } from 'node:http'
import { createServer, type AddressInfo } from 'node:net'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { connect, type ConnectionOptions } from 'node:tls'
import { after, before, describe, test } from 'node:test'
import { pino } from 'pino'
import { pkiSchema } from '../../src/config/schema/pki.js'
import { ensureManagedCertificatesAtStart, startPkiService, type PkiService } from '../../src/control/pki-service.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import { OcspStapler } from '../../src/proxy/tls/ocsp-stapling.js'
import { systemClock } from '../../src/shared/clock.js'
import { waitFor } from '../harness/client.js'
import { startGateway, type LogLine, type TestGateway } from '../harness/gateway.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { newCa, passphrase, put, urls } from './pki-helpers.js'

const root = join(import.meta.dirname, '..', '..')
const env = { PKI_PASSPHRASE: passphrase }

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo
      s.close(() => resolve(port))
    })
  })
}

/** Runs a CLI without blocking the event loop (the gateway and responder live in this process). */
function run(cmd: string, args: readonly string[], extraEnv: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { encoding: 'utf8', timeout: 30_000, cwd: root, env: { PATH: process.env.PATH ?? '', ...extraEnv } }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
    child.stdin?.end() // s_client would otherwise wait for input until the server closes the connection
  })
}

function collector(into: LogLine[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) into.push(JSON.parse(line) as LogLine)
      done()
    },
  })
}

let work: string
let rootFile: string
let intermediateFile: string
let clientRoot: CaFiles
let client: CertFiles
let harness: TestPki
let service: PkiService
let gw: TestGateway
const events: LogLine[] = []
const stapler = new OcspStapler({ clock: systemClock, log: pino({ level: 'info' }, collector(events)) })

function yaml(stapling = 'auto'): string {
  return `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      minVersion: TLSv1.2
      ocspStapling: ${stapling}
      certificates: [{ cert: { file: certs/server.pem }, key: { file: certs/server.key } }]
      clientAuth: { trustBundle: [{ file: ${clientRoot.cert} }] }
upstreams: {}
routes: []
pki:
  caDir: ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: inventory.sqlite }
  http: { port: ${new URL(ocspUrl).port} }
  revocationSync: 100ms
  ocspValidity: 2s
  managedCertificates:
    - name: gateway-server
      profile: server
      subject: CN=localhost, O=Portcullis Test
      sans: [DNS:localhost, IP:127.0.0.1]
      certFile: certs/server.pem
      keyFile: certs/server.key
`
}
let ocspUrl: string

/** `openssl s_client -status`: the stapled response as openssl prints it. */
async function sClient(port: number, args: string[] = [], ca = rootFile): Promise<string> {
  const r = await run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost', '-status', '-CAfile', ca, '-cert', client.chain, '-key', client.key, ...args])
  assert.match(r.stdout, /Verify return code: 0 \(ok\)/, r.stdout + r.stderr)
  return r.stdout
}

/** A Node handshake asking for a staple: what it got and how long the handshake took. */
function handshake(port: number, ca: string): Promise<{ staple: Buffer | undefined; ms: number }> {
  const started = performance.now()
  return new Promise((resolve, reject) => {
    let staple: Buffer | undefined
    // requestOCSP is a TLSSocket option that @types/node leaves out of ConnectionOptions.
    const options: ConnectionOptions & { requestOCSP: boolean } = { host: '127.0.0.1', port, servername: 'localhost', ca: readFileSync(ca), cert: readFileSync(client.chain), key: readFileSync(client.key), requestOCSP: true }
    const socket = connect(options)
    // Node emits null (typed Buffer) when the server sent no staple.
    socket.on('OCSPResponse', (r: Buffer) => {
      staple = r ?? undefined
    })
    socket.once('secureConnect', () => {
      resolve({ staple, ms: performance.now() - started })
      socket.destroy()
    })
    socket.once('error', reject)
  })
}

before(async () => {
  ocspUrl = `http://127.0.0.1:${await freePort()}/ocsp`
  let ca
  ;({ ca, work } = await newCa({ urls: { ...urls, ocspUrl } }))
  rootFile = put(work, 'root-only.crt', ca.root.toString('pem'))
  intermediateFile = put(work, 'intermediate-only.crt', ca.intermediate.toString('pem'))
  harness = new TestPki()
  clientRoot = harness.root('staple-client-root')
  client = harness.client('staple-client', clientRoot)
  const text = yaml()
  writeFileSync(join(work, 'gateway.yaml'), text)
  const cfg = pkiSchema.parse({
    caDir: 'ca',
    passphrase: { env: 'PKI_PASSPHRASE' },
    inventory: { sqlite: 'inventory.sqlite' },
    http: { port: Number(new URL(ocspUrl).port) },
    revocationSync: '100ms',
    ocspValidity: '2s',
    managedCertificates: [{ name: 'gateway-server', profile: 'server', subject: 'CN=localhost, O=Portcullis Test', sans: ['DNS:localhost', 'IP:127.0.0.1'], certFile: 'certs/server.pem', keyFile: 'certs/server.key' }],
  })
  const deps = { source: { baseDir: work, env }, clock: systemClock, log: pino({ level: 'silent' }) }
  await ensureManagedCertificatesAtStart(cfg, deps)
  service = await startPkiService(cfg, { ...deps, revocation: new RevocationSet() })
  gw = await startGateway({ yaml: text, dir: work, env, stapler })
})

after(async () => {
  await gw?.close()
  await service?.close()
})

describe('OCSP stapling of a certificate from the built-in CA', { timeout: 120_000 }, () => {
  test('openssl s_client sees a successful, good staple over TLS 1.3 and TLS 1.2, ALPN h2 and http/1.1', async () => {
    for (const args of [['-tls1_3', '-alpn', 'h2'], ['-tls1_3', '-alpn', 'http/1.1'], ['-tls1_2', '-alpn', 'h2'], ['-tls1_2']]) {
      const out = await sClient(gw.port(), args)
      assert.match(out, /OCSP Response Status: successful \(0x0\)/, `${args.join(' ')}\n${out}`)
      assert.match(out, /Cert Status: good/)
      assert.match(out, /Responder Id: /)
      assert.match(out, args[0] === '-tls1_2' ? /New, TLSv1\.2,/ : /New, TLSv1\.3,/)
    }
  })

  test('the stapled bytes verify with openssl ocsp against the root, for the served certificate', async () => {
    const { staple } = await handshake(gw.port(), rootFile)
    assert.ok(staple, 'a staple was sent')
    const file = join(work, 'staple.der')
    writeFileSync(file, staple)
    const serverCert = join(work, 'certs/server.pem')
    const r = await run('openssl', ['ocsp', '-respin', file, '-issuer', intermediateFile, '-cert', serverCert, '-CAfile', rootFile])
    assert.match(r.stderr, /Response verify OK/, r.stderr)
    assert.match(r.stdout, /server\.pem: good/)
  })

  test('ocspStapling: off on reload staples nothing; auto again staples', async () => {
    assert.equal((await gw.reload(yaml('off'))).ok, true)
    assert.match(await sClient(gw.port()), /OCSP response: no response sent/)
    assert.equal((await gw.reload(yaml('auto'))).ok, true)
    assert.match(await sClient(gw.port()), /Cert Status: good/)
  })

  test('after `portcullis ca revoke` of the server certificate, the refresh stops stapling and logs the error once', async () => {
    const serial = new X509Certificate(readFileSync(join(work, 'certs/server.pem'))).serialNumber
    const r = await run(process.execPath, ['--import', 'tsx', join(root, 'src/cli/index.ts'), 'ca', 'revoke', serial, '--config', join(work, 'gateway.yaml'), '--reason', 'keyCompromise'], env)
    assert.equal(r.code, 0, r.stdout + r.stderr)
    // ocspValidity 2s: the staple is refreshed every second.
    assert.ok(await waitFor(() => events.some((e) => e.level === 50 && /REVOKED/.test(String(e.msg))), 5000), 'the revocation is logged as an error')
    const out = await sClient(gw.port())
    assert.match(out, /OCSP response: no response sent/)
    assert.doesNotMatch(out, /Cert Status/)
    await new Promise((resolve) => setTimeout(resolve, 1200)) // another refresh: still revoked, not logged again
    assert.equal(events.filter((e) => e.level === 50 && /REVOKED/.test(String(e.msg))).length, 1)
  })
})

describe('a responder that is down or hangs', { timeout: 60_000 }, () => {
  let hanging: Server
  let down: TestGateway | undefined

  after(async () => {
    await down?.close()
    hanging?.closeAllConnections()
    hanging?.close()
  })

  test('the handshake succeeds without a staple: at once when refused, within the first-response wait when hanging', async () => {
    const closedPort = await freePort()
    hanging = createHttpServer(() => undefined)
    await new Promise<void>((resolve) => hanging.listen(0, '127.0.0.1', resolve))
    const hangingPort = (hanging.address() as AddressInfo).port
    const issuer = harness.root('staple-down-root')
    const refusedCert = harness.server('staple-refused', issuer, { extraExtensions: `authorityInfoAccess=OCSP;URI:http://127.0.0.1:${closedPort}/ocsp\n` }, [issuer])
    const hangingCert = harness.server('staple-hanging', issuer, { extraExtensions: `authorityInfoAccess=OCSP;URI:http://127.0.0.1:${hangingPort}/ocsp\n` }, [issuer])
    const listener = (name: string, cert: CertFiles) => `
  - name: ${name}
    port: 0
    tls:
      certificates: [{ cert: { file: ${cert.chain} }, key: { file: ${cert.key} } }]
      clientAuth: { trustBundle: [{ file: ${clientRoot.cert} }] }`
    const localEvents: LogLine[] = []
    down = await startGateway({
      yaml: `version: 1\nlisteners:${listener('refused', refusedCert)}${listener('hanging', hangingCert)}\nupstreams: {}\nroutes: []\n`,
      stapler: new OcspStapler({ clock: systemClock, log: pino({ level: 'info' }, collector(localEvents)) }),
    })
    const refused = await handshake(down.port('refused'), issuer.cert)
    assert.equal(refused.staple, undefined)
    assert.ok(refused.ms < 300, `refused responder: handshake took ${refused.ms} ms`)
    const slow = await handshake(down.port('hanging'), issuer.cert)
    assert.equal(slow.staple, undefined)
    assert.ok(slow.ms < 900, `hanging responder: handshake took ${slow.ms} ms`)
    const again = await handshake(down.port('hanging'), issuer.cert)
    assert.ok(again.ms < 300, `later handshakes do not wait: ${again.ms} ms`)
    assert.match(await sClient(down.port('refused'), [], issuer.cert), /OCSP response: no response sent/)
    assert.ok(localEvents.some((e) => e.level === 40 && /fetch for stapling failed/.test(String(e.msg))))
  })
})
