/**
 * Cluster mode as an operator runs it: `portcullis start --workers 2` in a
 * child process, real TLS on 127.0.0.1, the built-in CA with a SQLite
 * inventory and `portcullis ca revoke` run as its own process. Which worker
 * served a connection is read from the access log (every line carries
 * `worker`), matched by the client's port. The listener is on port 0: the
 * workers share the port the primary bound, and the primary logs it.
 *
 * Node's cluster gives all workers the first worker's start-up ticket key by
 * itself; what proves our shared keys is resumption across workers after a
 * reload (each worker's new secure context has a random key) and on a
 * replacement worker.
 */
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { readFileSync, existsSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { after, before, describe, test } from 'node:test'
import tls from 'node:tls'
import { toInventoryRecord } from '../../src/control/inventory-record.js'
import { issueCertificate } from '../../src/pki/ca-issue.js'
import { systemClock } from '../../src/shared/clock.js'
import { openSqliteStorage } from '../../src/storage/sqlite.js'
import { waitFor } from '../harness/client.js'
import { TestPki, type CaFiles, type CertFiles } from '../harness/pki.js'
import { startUpstream, type TestUpstream } from '../harness/upstream.js'
import { newCa, passphrase, put } from './pki-helpers.js'

const root = join(import.meta.dirname, '..', '..')
const cli = ['--import', 'tsx', join(root, 'src', 'cli', 'index.ts')]
const env = { PATH: process.env.PATH ?? '', PKI_PASSPHRASE: passphrase }
/** Starting two workers under tsx on a busy machine takes seconds. */
const START_MS = 90_000

type Line = Record<string, unknown>

/** A `portcullis start` child process with its logs parsed as they come. */
class GatewayProcess {
  readonly access: Line[] = []
  readonly log: Line[] = []
  stderr = ''
  readonly exited: Promise<number | null>

  constructor(readonly child: ChildProcess) {
    const lines = (into: Line[], onText?: (t: string) => void) => {
      let rest = ''
      return (chunk: Buffer) => {
        const text = rest + chunk.toString('utf8')
        onText?.(chunk.toString('utf8'))
        const parts = text.split('\n')
        rest = parts.pop() ?? ''
        for (const part of parts) if (part.startsWith('{')) into.push(JSON.parse(part) as Line)
      }
    }
    child.stdout!.on('data', lines(this.access))
    child.stderr!.on('data', lines(this.log, (t) => (this.stderr += t)))
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)))
  }

  static start(config: string, pidFile: string, workers = '2'): GatewayProcess {
    return new GatewayProcess(spawn(process.execPath, [...cli, 'start', '--config', config, '--workers', workers, '--pid-file', pidFile], { cwd: root, env }))
  }

  /** The first process-log line matching, waiting up to `ms`. */
  async line(match: (l: Line) => boolean, ms = 10_000, what = 'a log line'): Promise<Line> {
    assert.ok(await waitFor(() => this.log.some(match), ms), `${what} within ${ms} ms; stderr:\n${this.stderr}`)
    return this.log.find(match)!
  }

  count(msg: string): number {
    return this.log.filter((l) => l.msg === msg).length
  }

  /** Pids of the workers that are serving now, by worker id. */
  workers(): Map<number, number> {
    const ready = new Map<number, number>()
    for (const l of this.log) {
      if (l.role !== 'primary') continue
      if (l.msg === 'worker ready') ready.set(l.worker as number, l.pid as number)
      if (l.msg === 'worker died') ready.delete(l.worker as number)
    }
    return ready
  }

  /** The worker that logged the access line of a connection from `clientPort`. */
  async servedBy(clientPort: number): Promise<number> {
    const match = (l: Line) => l.clientPort === clientPort
    assert.ok(await waitFor(() => this.access.some(match), 5000), `an access-log line for client port ${clientPort}`)
    return this.access.find(match)!.worker as number
  }
}

interface Exchange {
  readonly status: number
  readonly isResumed: boolean
  readonly session: Buffer | undefined
  readonly localPort: number
  readonly version: string
}

/** One TLS connection, one `GET path` with Connection: close; resolves when the server closed. */
function exchange(port: number, client: CertFiles, ca: string, opts: { session?: Buffer; maxVersion?: tls.SecureVersion; path?: string } = {}): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    let session: Buffer | undefined
    const socket = tls.connect({
      host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['http/1.1'], session: opts.session, maxVersion: opts.maxVersion ?? 'TLSv1.3',
      ca: readFileSync(ca), cert: readFileSync(client.chain), key: readFileSync(client.key),
    })
    socket.on('session', (s: Buffer) => (session = s))
    socket.once('error', reject)
    socket.once('secureConnect', () => {
      const isResumed = socket.isSessionReused()
      const localPort = socket.localPort ?? 0
      const version = socket.getProtocol() ?? ''
      socket.write(`GET ${opts.path ?? '/r'} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n`)
      let text = ''
      socket.on('data', (d: Buffer) => (text += d.toString()))
      socket.once('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), isResumed, session, localPort, version }))
    })
  })
}

/** A kept-alive connection that answered one request; `closed` resolves when the gateway closes it. */
function keepAlive(port: number, client: CertFiles, ca: string): Promise<{ localPort: number; closed: Promise<number> }> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ALPNProtocols: ['http/1.1'], ca: readFileSync(ca), cert: readFileSync(client.chain), key: readFileSync(client.key) })
    socket.once('error', reject)
    const closed = new Promise<number>((done) => socket.once('close', () => done(Date.now())))
    socket.once('secureConnect', () => {
      socket.write('GET /r HTTP/1.1\r\nHost: localhost\r\n\r\n')
      socket.once('data', (d: Buffer) => {
        if (!d.toString().startsWith('HTTP/1.1 200')) return reject(new Error(`expected 200, got ${d.toString().split('\r\n')[0]}`))
        socket.off('error', reject)
        socket.on('error', () => undefined)
        resolve({ localPort: socket.localPort ?? 0, closed })
      })
    })
  })
}

function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(process.execPath, [...cli, ...args], { cwd: root, env, timeout: 60_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr })
    })
  })
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

/** Every client-certificate setup the tests use: an openssl-made PKI for the server and alice, the built-in CA for the partner. */
interface Fixture {
  readonly work: string
  readonly serverRoot: CaFiles
  readonly alice: CertFiles
  readonly partner: CertFiles & { readonly serial: string }
  readonly caRoot: string
  readonly upstream: TestUpstream
  yaml(extra?: { route?: string; ciphers?: string; pki?: boolean }): string
}

async function fixture(): Promise<Fixture> {
  const { ca, work } = await newCa()
  const pki = new TestPki()
  const serverRoot = pki.root('server-root')
  const server = pki.server('gateway', serverRoot)
  const alice = pki.client('alice', serverRoot)
  const caRoot = put(work, 'ca-root.crt', ca.root.toString('pem'))
  const issued = await issueCertificate(ca, { profile: 'client', subject: 'CN=partner', plainKey: true, clock: systemClock })
  const storage = openSqliteStorage({ path: join(work, 'inventory.sqlite'), clock: systemClock })
  await storage.inventory!.add(toInventoryRecord(issued.record))
  await storage.close()
  const partner = {
    cert: put(work, 'partner.crt', issued.certPem),
    key: put(work, 'partner.key', issued.keyPem),
    chain: put(work, 'partner-chain.pem', issued.certPem + ca.intermediate.toString('pem') + '\n'),
    serial: issued.record.serial,
  }
  const upstream = await startUpstream()
  const yaml = (extra: { route?: string; ciphers?: string; pki?: boolean } = {}) => `
version: 1
listeners:
  - name: main
    port: 0
    tls:
      minVersion: TLSv1.2
${extra.ciphers ? `      ciphers: ${extra.ciphers}\n` : ''}      certificates: [{ cert: { file: ${server.chain} }, key: { file: ${server.key} } }]
      clientAuth: { trustBundle: [{ file: ${serverRoot.cert} }, { file: ${caRoot} }] }
    # Kept-alive connections must outlive the \`ca revoke\` process's start.
    limits: { keepAliveTimeout: 120s }
upstreams:
  app: { targets: [{ url: ${upstream.url} }] }
routes:
  - name: r
    match: { path: { prefix: ${extra.route ?? '/r'} } }
    access: { allowAnyClientCert: true }
    upstream: app
metrics: { port: 0 }
${extra.pki === false ? '' : `pki:
  caDir: ca
  passphrase: { env: PKI_PASSPHRASE }
  inventory: { sqlite: inventory.sqlite }
  revocationSync: 200ms
`}`
  return { work, serverRoot, alice, partner, caRoot, upstream, yaml }
}

describe('cluster mode: portcullis start --workers 2', { timeout: 240_000 }, () => {
  let fx: Fixture
  let gw: GatewayProcess
  let port: number
  let config: string
  let pidFile: string
  const ca = () => fx.serverRoot.cert

  /** Connections until both workers have served one (round robin makes that two or three). */
  async function bothWorkers(run: () => Promise<Exchange>, n = 8): Promise<{ results: Exchange[]; workers: Set<number> }> {
    const results: Exchange[] = []
    for (let i = 0; i < n; i++) results.push(await run())
    const workers = new Set(await Promise.all(results.map((r) => gw.servedBy(r.localPort))))
    return { results, workers }
  }

  before(async () => {
    fx = await fixture()
    config = put(fx.work, 'gateway.yaml', fx.yaml())
    pidFile = join(fx.work, 'portcullis.pid')
    gw = GatewayProcess.start(config, pidFile)
    const listening = await gw.line((l) => l.msg === 'listening', START_MS, 'the primary logging "listening"')
    port = listening.port as number
    assert.ok(port > 0)
  })

  after(async () => {
    if (gw?.child.exitCode === null) {
      gw.child.kill('SIGKILL')
      for (const pid of gw.workers().values()) if (isAlive(pid)) process.kill(pid, 'SIGKILL')
    }
    await fx?.upstream.close()
  })

  test('both workers serve the one port, and the pid file names the primary', async () => {
    assert.equal(gw.workers().size, 2)
    assert.equal(Number(readFileSync(pidFile, 'utf8')), gw.child.pid)
    const { results, workers } = await bothWorkers(() => exchange(port, fx.alice, ca()))
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results.map((r) => r.status)))
    assert.deepEqual([...workers].sort(), [...gw.workers().keys()].sort())
    assert.equal(gw.count('listening'), 1, 'the primary logs the listener once')
  })

  test('one /metrics scrape covers the primary and every worker, each under its process label', async () => {
    const serving = await gw.line((l) => l.msg === 'serving metrics', START_MS, 'the primary logging "serving metrics"')
    const text = await (await fetch(`http://127.0.0.1:${serving.port as number}/metrics`)).text()
    const processes = new Set([...text.matchAll(/^process_resident_memory_bytes\{process="([^"]+)"\} \d+$/gm)].map((m) => m[1]))
    assert.deepEqual([...processes].sort(), ['primary', ...[...gw.workers().keys()].map((id) => `worker-${id}`)].sort(), text.slice(0, 2000))
  })

  for (const version of ['TLSv1.3', 'TLSv1.2'] as const) {
    test(`${version} sessions resume on every worker (shared ticket keys)`, async () => {
      const first = await exchange(port, fx.alice, ca(), { maxVersion: version })
      assert.equal(first.version, version)
      assert.ok(first.session, 'the server issued a ticket')
      const { results, workers } = await bothWorkers(() => exchange(port, fx.alice, ca(), { maxVersion: version, session: first.session }), 10)
      assert.deepEqual(results.map((r) => r.isResumed), results.map(() => true), 'every reconnect resumed')
      assert.ok(results.every((r) => r.status === 200))
      assert.equal(workers.size, 2, 'resumed on both workers')
      const lines = gw.access.filter((l) => results.some((r) => r.localPort === l.clientPort))
      assert.ok(lines.every((l) => (l.tls as { resumed: boolean }).resumed), 'the gateway saw them as resumed')
    })
  }

  test('SIGHUP to the primary reloads every worker; a refused config is refused everywhere and reported once', async () => {
    const before = await exchange(port, fx.alice, ca(), { path: '/s' })
    assert.equal(before.status, 404)
    writeFileSync(config, fx.yaml({ route: '/s' }))
    gw.child.kill('SIGHUP')
    const applied = await gw.line((l) => l.msg === 'reload applied', 30_000)
    assert.equal(applied.generation, 2)
    assert.deepEqual(gw.log.filter((l) => l.msg === 'config applied' && l.generation === 2).map((l) => l.worker).sort(), [...gw.workers().keys()].sort())
    const { results, workers } = await bothWorkers(() => exchange(port, fx.alice, ca(), { path: '/s' }))
    assert.ok(results.every((r) => r.status === 200), JSON.stringify(results.map((r) => r.status)))
    assert.equal(workers.size, 2)
    // A reload starts a new ticket key, as in one process; it is shared again at once (each worker's new
    // secure context came with a random key of its own, which Node's cluster does not share).
    assert.equal((await exchange(port, fx.alice, ca(), { path: '/s', session: before.session })).isResumed, false, 'a session from before the reload')
    const fresh = await exchange(port, fx.alice, ca(), { path: '/s' })
    const resumed = await bothWorkers(() => exchange(port, fx.alice, ca(), { path: '/s', session: fresh.session }))
    assert.ok(resumed.results.every((r) => r.isResumed), JSON.stringify(resumed.results.map((r) => r.isResumed)))
    assert.equal(resumed.workers.size, 2)

    // Refused by the primary's check: no worker sees it.
    writeFileSync(config, `${fx.yaml({ route: '/s' })}bogus: true\n`)
    gw.child.kill('SIGHUP')
    await gw.line((l) => l.msg === 'reload refused; keeping the running config', 10_000)
    // Refused only when compiled (OpenSSL rejects the cipher list): every worker refuses, the primary reports once.
    writeFileSync(config, fx.yaml({ route: '/s', ciphers: 'NOT-A-CIPHER' }))
    gw.child.kill('SIGHUP')
    assert.ok(await waitFor(() => gw.count('reload refused; keeping the running config') === 2, 30_000), gw.stderr)
    await new Promise((r) => setTimeout(r, 500))
    const refusals = gw.log.filter((l) => l.msg === 'reload refused; keeping the running config')
    assert.equal(refusals.length, 2, 'one report per refused reload')
    assert.match(String((refusals[0]!.issues as string[])[0]), /gateway\.yaml:\d+:\d+ bogus: /)
    assert.match(String((refusals[1]!.issues as string[])[0]), /listeners\.0\.tls\.ciphers: OpenSSL rejects this cipher list/)
    assert.equal(gw.count('reload applied'), 1)
    assert.equal(gw.log.filter((l) => l.msg === 'config applied' && l.generation === 3).length, 0, 'no worker applied it')
    const still = await bothWorkers(() => exchange(port, fx.alice, ca(), { path: '/s' }), 4)
    assert.ok(still.results.every((r) => r.status === 200))
    writeFileSync(config, fx.yaml({ route: '/r' }))
    gw.child.kill('SIGHUP')
    assert.ok(await waitFor(() => gw.count('reload applied') === 2, 30_000), gw.stderr)
  })

  test('a killed worker is replaced; sessions from before resume on the replacement', async () => {
    const saved = await exchange(port, fx.alice, ca())
    assert.ok(saved.session)
    const [victim, pid] = [...gw.workers()][0]!
    process.kill(pid, 'SIGKILL')
    const died = await gw.line((l) => l.msg === 'worker died' && l.worker === victim, 10_000)
    assert.equal(died.signal, 'SIGKILL')
    await gw.line((l) => l.msg === 'worker replaced' && l.replaced === victim, START_MS)
    const workers = gw.workers()
    assert.equal(workers.size, 2)
    assert.ok(!workers.has(victim))
    assert.ok(!isAlive(pid))
    const { results, workers: served } = await bothWorkers(() => exchange(port, fx.alice, ca(), { session: saved.session }))
    assert.ok(results.every((r) => r.status === 200 && r.isResumed), JSON.stringify(results.map((r) => [r.status, r.isResumed])))
    assert.deepEqual([...served].sort(), [...workers.keys()].sort(), 'the replacement serves, with the shared ticket key')
  })

  test('client certificates seen by any worker reach the inventory through the primary (sightings)', async () => {
    const startedAt = Date.now()
    const { results, workers } = await bothWorkers(() => exchange(port, fx.partner, ca()), 4)
    assert.ok(results.every((r) => r.status === 200))
    assert.equal(workers.size, 2)
    const storage = openSqliteStorage({ path: join(fx.work, 'inventory.sqlite'), clock: systemClock })
    try {
      let seenAt: number | undefined
      const deadline = Date.now() + 15_000 // forwarded within 1 s, flushed every 5 s
      while ((seenAt ?? 0) < startedAt && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 250))
        seenAt = (await storage.inventory!.get(fx.partner.serial))?.lastSeenAt
      }
      assert.ok(seenAt !== undefined && seenAt >= startedAt, `lastSeenAt ${seenAt} after ${startedAt}`)
    } finally {
      await storage.close()
    }
  })

  test('`ca revoke` closes the certificate’s connections in every worker within a second and refuses it everywhere', async () => {
    const conns: { localPort: number; closed: Promise<number>; worker: number }[] = []
    for (let i = 0; i < 6 && new Set(conns.map((c) => c.worker)).size < 2; i++) {
      const c = await keepAlive(port, fx.partner, ca())
      conns.push({ ...c, worker: await gw.servedBy(c.localPort) })
    }
    assert.equal(new Set(conns.map((c) => c.worker)).size, 2, 'a kept-alive connection on each worker')
    const launchedAt = Date.now()
    const r = await portcullis(['ca', 'revoke', fx.partner.serial, '--config', config, '--reason', 'keyCompromise'])
    assert.equal(r.code, 0, r.stderr)
    const revokedAt = Date.now()
    const closedAt = await Promise.all(conns.map((c) => Promise.race([c.closed, new Promise<number>((done) => setTimeout(() => done(Infinity), 5000))])))
    assert.ok(closedAt.every((t) => t >= launchedAt), 'nothing closed them before the revocation')
    const slowest = Math.max(...closedAt) - revokedAt
    assert.ok(slowest <= 1000, `every connection closed within 1 s of the CLI's exit (slowest: ${slowest} ms)`)
    for (let i = 0; i < 6; i++) {
      const refused = await exchange(port, fx.partner, ca()).catch(() => undefined)
      assert.notEqual(refused?.status, 200, 'no new connection is admitted')
    }
    const refusals = () => gw.access.filter((l) => l.type === 'handshake' && l.reason === 'cert_revoked' && !String(l.detail).includes('established'))
    assert.ok(await waitFor(() => new Set(refusals().map((l) => l.worker)).size === 2, 5000), `refused by both workers: ${JSON.stringify(refusals())}`)
    const closes = gw.access.filter((l) => l.reason === 'cert_revoked' && String(l.detail).includes('established connection closed'))
    assert.deepEqual([...new Set(closes.map((l) => l.worker))].sort(), [...new Set(conns.map((c) => c.worker))].sort())
    assert.equal((await exchange(port, fx.alice, ca())).status, 200, 'other certificates are untouched')
  })

  test('SIGTERM drains every worker, removes the pid file and exits 0 leaving no process behind', async () => {
    const pids = [...gw.workers().values()]
    gw.child.kill('SIGTERM')
    assert.equal(await gw.exited, 0)
    assert.ok(pids.every((pid) => !isAlive(pid)), `workers gone: ${pids.filter(isAlive).join(', ')}`)
    assert.equal(existsSync(pidFile), false)
  })
})

describe('cluster mode: failures', { timeout: 240_000 }, () => {
  let fx: Fixture
  before(async () => {
    fx = await fixture()
  })
  after(async () => {
    await fx?.upstream.close()
  })

  test('a config every worker refuses at start is printed once, and the gateway exits 1', async () => {
    const config = put(fx.work, 'refused.yaml', fx.yaml({ ciphers: 'NOT-A-CIPHER', pki: false }))
    const gw = GatewayProcess.start(config, join(fx.work, 'refused.pid'))
    assert.equal(await gw.exited, 1)
    const printed = gw.stderr.split('\n').filter((l) => l.includes('OpenSSL rejects this cipher list'))
    assert.equal(printed.length, 1, gw.stderr)
    assert.match(printed[0]!, /^.*refused\.yaml:\d+:\d+ listeners\.0\.tls\.ciphers: /)
  })

  test('workers that keep dying stop the gateway with a clear error instead of being forked forever', async () => {
    const config = put(fx.work, 'crash.yaml', fx.yaml({ pki: false }))
    const gw = GatewayProcess.start(config, join(fx.work, 'crash.pid'))
    await gw.line((l) => l.msg === 'listening', START_MS)
    const killed = new Set<number>()
    // Kill every worker as soon as it exists: the two first, then each replacement.
    const timer = setInterval(() => {
      for (const l of gw.log) {
        const pid = l.pid as number
        if (l.role === 'primary' && l.msg === 'worker started' && !killed.has(pid)) {
          killed.add(pid)
          try {
            process.kill(pid, 'SIGKILL')
          } catch {
            // already gone
          }
        }
      }
    }, 20)
    try {
      assert.equal(await gw.exited, 1)
    } finally {
      clearInterval(timer)
    }
    const gaveUp = gw.log.find((l) => String(l.msg).startsWith('workers keep dying'))
    assert.ok(gaveUp, gw.stderr)
    assert.match(String(gaveUp.msg), /5 deaths within 60 s/)
    assert.equal(gw.count('worker died'), 5)
    assert.ok([...killed].every((pid) => !isAlive(pid)))
  })
})
