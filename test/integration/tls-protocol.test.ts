/**
 * Protocol settings of a ListenerTls, judged by openssl s_client over real
 * TLS on 127.0.0.1: versions, TLS 1.2 cipher policy (ECDHE + AEAD only), and
 * client-initiated renegotiation.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { after, before, describe, it } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import tls from 'node:tls'
import { listenerSchema } from '../../src/config/schema/listeners.js'
import { systemClock } from '../../src/shared/clock.js'
import { compileListenerTls, makeSniCallback, type ListenerTls } from '../../src/proxy/tls/listener-tls.js'
import { TestPki } from '../harness/pki.js'

const pki = new TestPki()
const ca = pki.root('proto-ca')
const ecServer = pki.server('proto-ec', ca)
const rsaServer = pki.server('proto-rsa', ca, { keyType: 'rsa' })
const client = pki.client('proto-client', ca)

function compile(server: { chain: string; key: string }, minVersion: 'TLSv1.2' | 'TLSv1.3'): ListenerTls {
  const cfg = listenerSchema.parse({
    name: 'proto',
    port: 0,
    tls: { minVersion, certificates: [{ cert: { file: server.chain }, key: { file: server.key } }], clientAuth: { trustBundle: [{ file: ca.cert }] } },
  })
  return compileListenerTls(cfg, { source: { baseDir: pki.dir, env: {} }, clock: systemClock })
}

interface Handshake {
  readonly protocol: string | null
  readonly cipher: string
  readonly accepted: boolean
}

/** A tls.Server from the ListenerTls that echoes lines, recording each finished handshake. */
async function serve(lt: ListenerTls) {
  const handshakes: Handshake[] = []
  const server = tls.createServer({ ...lt.serverOptions, SNICallback: makeSniCallback(() => lt) }, (socket) => {
    const verdict = lt.verifyPeer(socket)
    handshakes.push({ protocol: socket.getProtocol(), cipher: socket.getCipher().name, accepted: 'identity' in verdict })
    socket.on('error', () => {})
    socket.setEncoding('utf8')
    socket.on('data', (d: string) => socket.write(`echo:${d}`))
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  return {
    port,
    handshakes,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r())
      }),
  }
}

/**
 * Runs `openssl s_client` with a client certificate; `script` lines are sent
 * with a pause before each (s_client reads "R" as "renegotiate").
 */
async function sClient(port: number, args: readonly string[], script: readonly string[] = []): Promise<{ code: number | null; out: string }> {
  const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-cert', client.cert, '-key', client.key, '-CAfile', ca.cert, ...args], { stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  p.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
  const output = () => `${stdout}\n${stderr}` // s_client's session printout may still split lines: match echoes unanchored
  const exited = new Promise<number | null>((resolve) => p.on('close', (code) => resolve(code)))
  const timer = setTimeout(() => p.kill(), 8000)
  p.stdin.on('error', () => {}) // s_client may be gone before we finish writing
  let done = false
  void exited.then(() => (done = true))
  /** Waits (at most `ms`) until the output matches, or s_client is gone. */
  const until = async (pattern: RegExp, ms: number) => {
    for (let waited = 0; waited < ms && !done && !pattern.test(output()); waited += 20) await sleep(20)
  }
  await until(/Verify return code/, 3000) // handshake finished
  for (const line of script) {
    p.stdin.write(`${line}\n`)
    await until(line === 'R' ? /RENEGOTIATING[\s\S]*\n.*\n/ : new RegExp(`echo:${line}`), 1500)
  }
  p.stdin.end()
  const code = await exited
  clearTimeout(timer)
  return { code, out: output() }
}

describe('TLS 1.2 cipher policy (ECDHE with AEAD only)', { timeout: 30_000 }, () => {
  let ec: Awaited<ReturnType<typeof serve>>
  let rsa: Awaited<ReturnType<typeof serve>>
  before(async () => {
    ec = await serve(compile(ecServer, 'TLSv1.2'))
    rsa = await serve(compile(rsaServer, 'TLSv1.2'))
  })
  after(async () => {
    await ec.close()
    await rsa.close()
  })

  it('accepts ECDHE-ECDSA-AES128-GCM-SHA256 over TLS 1.2', async () => {
    const r = await sClient(ec.port, ['-tls1_2', '-cipher', 'ECDHE-ECDSA-AES128-GCM-SHA256'], ['hello'])
    assert.match(r.out, /echo:hello\n/)
    assert.deepEqual(ec.handshakes.at(-1), { protocol: 'TLSv1.2', cipher: 'ECDHE-ECDSA-AES128-GCM-SHA256', accepted: true })
  })

  it('refuses AES128-SHA (RSA key exchange, CBC, SHA-1 MAC)', async () => {
    const before = rsa.handshakes.length
    const r = await sClient(rsa.port, ['-tls1_2', '-cipher', 'AES128-SHA'])
    assert.notEqual(r.code, 0)
    assert.equal(rsa.handshakes.length, before)
  })

  it('refuses AES128-GCM-SHA256 (AEAD but no forward secrecy) and ECDHE-RSA-AES128-SHA (CBC)', async () => {
    const before = rsa.handshakes.length
    assert.notEqual((await sClient(rsa.port, ['-tls1_2', '-cipher', 'AES128-GCM-SHA256'])).code, 0)
    assert.notEqual((await sClient(rsa.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-SHA'])).code, 0)
    assert.equal(rsa.handshakes.length, before)
  })

  it('accepts ECDHE-RSA-AES128-GCM-SHA256 with an RSA certificate (control for the refusals above)', async () => {
    const r = await sClient(rsa.port, ['-tls1_2', '-cipher', 'ECDHE-RSA-AES128-GCM-SHA256'], ['hi'])
    assert.match(r.out, /echo:hi\n/)
    assert.equal(rsa.handshakes.at(-1)?.cipher, 'ECDHE-RSA-AES128-GCM-SHA256')
  })

  it('refuses client-initiated renegotiation', async () => {
    const r = await sClient(ec.port, ['-tls1_2'], ['before', 'R', 'after'])
    assert.match(r.out, /echo:before\n/)
    assert.match(r.out, /RENEGOTIATING/) // s_client did try
    assert.doesNotMatch(r.out, /echo:after/)
    assert.notEqual(r.code, 0)
  })
})

describe('TLS versions', { timeout: 30_000 }, () => {
  it('refuses TLS 1.2 when minVersion is TLSv1.3 (the default) and accepts TLS 1.3', async () => {
    const s = await serve(compile(ecServer, 'TLSv1.3'))
    try {
      assert.notEqual((await sClient(s.port, ['-tls1_2'])).code, 0)
      assert.equal(s.handshakes.length, 0)
      const r = await sClient(s.port, ['-tls1_3'], ['x'])
      assert.match(r.out, /echo:x\n/)
      assert.equal(s.handshakes[0]?.protocol, 'TLSv1.3')
    } finally {
      await s.close()
    }
  })
})
