/**
 * The shim, built and preloaded into real programs: `openssl s_client` (which
 * creates its SSL_CTX like wrk does) presents the bench client certificate to
 * a Node TLS server that requires one, at the TLS version asked for; wrk
 * through it resumes sessions only when told, and its counters say so.
 * Skipped without gcc and the OpenSSL headers, or without wrk
 * (scripts/setup-bench.sh installs them).
 */
import assert from 'node:assert/strict'
import { execFile, spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync } from 'node:fs'
import { createServer as createHttpsServer } from 'node:https'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { createServer, type Server, type TLSSocket } from 'node:tls'
import { buildPreload } from '../build-tools.js'
import { parseWrkOutput } from '../clients/wrk.js'
import { makeBenchPki, type BenchPki } from '../pki.js'

const hasToolchain = existsSync('/usr/include/openssl/ssl.h') && spawnSync('sh', ['-c', 'command -v gcc']).status === 0
const hasWrk = spawnSync('sh', ['-c', 'command -v wrk']).status === 0
const skip = !hasToolchain && 'gcc or libssl-dev missing (scripts/setup-bench.sh)'

let pki: BenchPki
let shim: string
let server: Server
let port: number
const seen: { subject: string; protocol: string | null }[] = []

before(async () => {
  if (!hasToolchain) return
  pki = makeBenchPki(mkdtempSync(join(tmpdir(), 'bench-shim-')), 'ec')
  shim = buildPreload()
  server = createServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.caCert), requestCert: true, rejectUnauthorized: true }, (socket: TLSSocket) => {
    seen.push({ subject: String(socket.getPeerCertificate().subject?.CN), protocol: socket.getProtocol() })
    socket.end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  port = (server.address() as { port: number }).port
})
after(() => server?.close())

/** Runs a program with the shim preloaded. Asynchronously: the servers it talks to live in this process. */
function run(command: string, args: readonly string[], env: Record<string, string>): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(command, args, { env: { ...process.env, LD_PRELOAD: shim, ...env }, timeout: 20_000 }, (err, stdout, stderr) => {
      resolve({ status: err ? ((err as { code?: number }).code ?? null) : 0, stdout, stderr })
    })
    child.stdin?.end()
  })
}

const sClient = (env: Record<string, string>) => run('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, '-servername', 'localhost'], env)

test('a program that makes its own SSL_CTX presents the certificate from the environment', { skip }, async () => {
  seen.length = 0
  const r = await sClient({ WRK_CLIENT_CERT: pki.clientCert, WRK_CLIENT_KEY: pki.clientKey })
  assert.equal(r.status, 0, r.stderr)
  assert.deepEqual(seen, [{ subject: 'client-ec', protocol: 'TLSv1.3' }])
})

test('WRK_TLS_MAX=1.2 caps the version', { skip }, async () => {
  seen.length = 0
  await sClient({ WRK_CLIENT_CERT: pki.clientCert, WRK_CLIENT_KEY: pki.clientKey, WRK_TLS_MAX: '1.2' })
  assert.deepEqual(seen, [{ subject: 'client-ec', protocol: 'TLSv1.2' }])
})

test('without a certificate in the environment the program stops instead of running without one', { skip }, async () => {
  const r = await sClient({})
  assert.equal(r.status, 2)
  assert.match(r.stderr, /set WRK_CLIENT_CERT and WRK_CLIENT_KEY/)
  const wrongKey = await sClient({ WRK_CLIENT_CERT: pki.clientCert, WRK_CLIENT_KEY: pki.serverKey })
  assert.equal(wrongKey.status, 2)
  assert.match(wrongKey.stderr, /cannot load the key \(or it is not the certificate's\)/)
})

test('wrk resumes sessions on reconnect only with WRK_TLS_RESUME=1, and the counters say so', { skip: skip || (!hasWrk && 'wrk is not installed') }, async () => {
  const https = createHttpsServer({ cert: readFileSync(pki.serverCert), key: readFileSync(pki.serverKey), ca: readFileSync(pki.caCert), requestCert: true, rejectUnauthorized: true }, (_req, res) => res.end('ok'))
  await new Promise<void>((resolve) => https.listen(0, '127.0.0.1', resolve))
  const url = `https://127.0.0.1:${(https.address() as { port: number }).port}/`
  const wrk = async (resume: string, tls: string) => {
    const r = await run('wrk', ['-t1', '-c2', '-d1s', '-H', 'Connection: close', '-s', join(import.meta.dirname, '..', 'clients', 'wrk-report.lua'), url], {
      WRK_CLIENT_CERT: pki.clientCert, WRK_CLIENT_KEY: pki.clientKey, WRK_TLS_RESUME: resume, WRK_TLS_MAX: tls,
    })
    assert.equal(r.status, 0, r.stderr)
    return parseWrkOutput(r.stdout, r.stderr)
  }
  try {
    for (const tls of ['1.2', '1.3']) {
      const fresh = await wrk('0', tls)
      assert.ok(fresh.handshakes > 10, `TLS ${tls}: ${fresh.handshakes} handshakes`)
      assert.equal(fresh.resumed, 0, `TLS ${tls}: new handshakes only`)
      assert.equal(fresh.errors, 0)
      // A Node server issues no new ticket on a resumed TLS 1.3 connection and
      // each of its tickets resumed once here, so TLS 1.3 reconnects resume every other time.
      const resumed = await wrk('1', tls)
      const expected = tls === '1.2' ? 0.9 : 0.4
      assert.ok(resumed.resumed >= resumed.handshakes * expected, `TLS ${tls}: ${resumed.resumed} of ${resumed.handshakes} resumed`)
    }
  } finally {
    https.close()
  }
})
