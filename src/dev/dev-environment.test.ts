import assert from 'node:assert/strict'
import { execFile } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs'
import { createServer } from 'node:https'
import type { Server } from 'node:https'
import type { TLSSocket } from 'node:tls'
import { tmpdir } from 'node:os'
import { isAbsolute, join } from 'node:path'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'
import { parse } from 'yaml'
import { configSchema } from '../config/schema/index.js'
import { FixedClock } from '../shared/clock.js'
import { ensureDevPki } from './dev-pki.js'
import { prepareDevEnvironment, shellQuote } from './dev-environment.js'
import type { DevEnvironment } from './dev-environment.js'

const run = promisify(execFile)

/**
 * Stands in for the gateway on the dev listener, to check that the printed
 * curl commands are well-formed and trust the right things: it asks for a
 * client certificate like clientAuth "optional" and answers 200 with the
 * certificate's subject, or 401 without one.
 */
async function standInGateway(dataDir: string): Promise<{ server: Server; port: number }> {
  const pki = await ensureDevPki(dataDir, { clock: new FixedClock(Date.now()) })
  const server = createServer(
    {
      cert: readFileSync(pki.server.certPath),
      key: readFileSync(pki.server.keyPath),
      ca: readFileSync(pki.ca.certPath),
      requestCert: true,
      rejectUnauthorized: false,
    },
    (req, res) => {
      const socket = req.socket as TLSSocket
      if (!socket.authorized) {
        res.writeHead(401).end('no client certificate\n')
        return
      }
      res.writeHead(200).end(`hello ${socket.getPeerCertificate().subject.CN}\n`)
    },
  )
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  return { server, port: (server.address() as { port: number }).port }
}

describe('prepareDevEnvironment', { timeout: 30_000 }, () => {
  const root = mkdtempSync(join(tmpdir(), 'portcullis-devenv-'))
  // A space and a quote in the path: the curl commands must still work in a shell.
  const dataDir = join(root, "it's data")
  let env: DevEnvironment | undefined
  let gateway: { server: Server; port: number } | undefined
  after(async () => {
    await env?.upstream.close()
    gateway?.server.closeAllConnections()
    await new Promise<void>((resolve) => (gateway ? gateway.server.close(() => resolve()) : resolve()))
    rmSync(root, { recursive: true, force: true })
  })

  test('writes a valid config (0600) for the listener port and a running upstream', async () => {
    gateway = await standInGateway(dataDir)
    env = await prepareDevEnvironment({ dataDir, port: gateway.port, clock: new FixedClock(Date.now()) })
    assert.equal(env.configPath, join(dataDir, 'portcullis.yaml'))
    assert.equal(statSync(env.configPath).mode & 0o777, 0o600)
    assert.equal(readFileSync(env.configPath, 'utf8'), env.configText)
    const parsed = configSchema.safeParse(parse(env.configText))
    assert.ok(parsed.success, JSON.stringify(parsed.error?.issues))
    assert.equal(parsed.data.listeners[0]?.port, gateway.port)
    assert.deepEqual(parsed.data.upstreams.example?.targets.map((t) => t.url), [env.upstream.url])
    assert.equal(env.pki.server.status, 'reused') // the stand-in made the PKI first; no second CA
    const health = await fetch(`${env.upstream.url}/healthz`)
    assert.equal(health.status, 200)
    assert.equal(await health.text(), 'ok\n')
  })

  test('prints curl commands with absolute paths for the dev CA and client certificate', () => {
    assert.ok(env)
    const base = `https://localhost:${gateway?.port}/hello`
    const ca = shellQuote(env.pki.ca.certPath)
    assert.ok(isAbsolute(env.pki.ca.certPath))
    assert.equal(
      env.curl.withCert,
      `curl --cacert ${ca} --cert ${shellQuote(env.pki.client.certPath)} --key ${shellQuote(env.pki.client.keyPath)} ${base}`,
    )
    assert.equal(env.curl.withoutCert, `curl --cacert ${ca} ${base}`)
  })

  test('the curl command with the certificate is let in; the one without is not', async () => {
    assert.ok(env)
    const withCert = await run('sh', ['-c', `${env.curl.withCert} --silent --show-error --write-out ' %{http_code}'`])
    assert.equal(withCert.stdout, 'hello dev-client\n 200')
    const withoutCert = await run('sh', ['-c', `${env.curl.withoutCert} --silent --show-error --write-out ' %{http_code}'`])
    assert.equal(withoutCert.stdout, 'no client certificate\n 401')
  })

  test('a second start rewrites the config for a new upstream and reuses the certificates', async () => {
    assert.ok(env && gateway)
    const previous = env
    await previous.upstream.close()
    env = await prepareDevEnvironment({ dataDir, port: gateway.port, clock: new FixedClock(Date.now()) })
    assert.equal(env.pki.ca.fingerprint256, previous.pki.ca.fingerprint256)
    assert.equal(env.pki.client.status, 'reused')
    assert.equal(readFileSync(env.configPath, 'utf8'), env.configText)
    assert.ok(env.configText.includes(JSON.stringify(env.upstream.url)))
  })
})

describe('shellQuote', () => {
  test('leaves plain paths bare and single-quotes the rest', () => {
    assert.equal(shellQuote('/home/a/.local/share/portcullis/ca.crt'), '/home/a/.local/share/portcullis/ca.crt')
    assert.equal(shellQuote("/tmp/it's $HOME"), "'/tmp/it'\\''s $HOME'")
    assert.equal(shellQuote(''), "''")
  })
})
