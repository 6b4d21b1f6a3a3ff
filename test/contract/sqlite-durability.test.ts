/**
 * What only the SQLite backend promises beyond the contracts: the file is
 * private, writes are durable once resolved (even if the process is killed
 * the next instant), and the schema is versioned.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, describe, it } from 'node:test'
import { SQLITE_SCHEMA_VERSION, openSqliteStorage } from '../../src/storage/sqlite.js'
import { SchemaTooNewError } from '../../src/storage/types.js'
import { FixedClock } from '../../src/shared/clock.js'

let dir: string
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'portcullis-sqlite-durability-'))
})
after(() => rmSync(dir, { recursive: true, force: true }))

const mode = (path: string): number => statSync(path).mode & 0o777

describe('SQLite storage', () => {
  it('creates the database and its WAL files readable by the owner only', { timeout: 10_000 }, async () => {
    const path = join(dir, 'private.db')
    const storage = openSqliteStorage({ path })
    await storage.kv.put('k', Buffer.from('v'))
    assert.equal(mode(path), 0o600)
    assert.equal(mode(`${path}-wal`), 0o600)
    assert.equal(mode(`${path}-shm`), 0o600)
    await storage.close()
  })

  it('tightens an existing file with looser permissions', { timeout: 10_000 }, async () => {
    const path = join(dir, 'loose.db')
    writeFileSync(path, '')
    chmodSync(path, 0o644)
    const storage = openSqliteStorage({ path })
    assert.equal(mode(path), 0o600)
    await storage.close()
  })

  it('runs in WAL mode with synchronous=FULL', { timeout: 10_000 }, async () => {
    const storage = openSqliteStorage({ path: join(dir, 'pragmas.db') })
    assert.equal(storage.db.pragma('journal_mode', { simple: true }), 'wal')
    assert.equal(storage.db.pragma('synchronous', { simple: true }), 2) // 2 = FULL
    await storage.close()
  })

  it('reads back after close and reopen, without re-running migrations', { timeout: 10_000 }, async () => {
    const path = join(dir, 'reopen.db')
    const first = openSqliteStorage({ path })
    const put = await first.kv.put('a', Buffer.from('kept'))
    const lock = await first.locker.acquire('l', { ttlMs: 60_000, waitMs: 0 })
    assert.ok(lock && 'version' in put)
    await first.close()
    const second = openSqliteStorage({ path })
    assert.deepEqual(await second.kv.get('a'), { value: Buffer.from('kept'), version: put.version })
    const next = await second.kv.put('b', Buffer.from('x'))
    assert.ok('version' in next && next.version > put.version, 'versions keep increasing across reopen')
    const relock = await second.locker.acquire('l', { ttlMs: 60_000, waitMs: 0 })
    assert.equal(relock, undefined, 'a lock survives reopen until it expires')
    const rows = second.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]
    assert.deepEqual(
      rows.map((r) => r.version),
      Array.from({ length: SQLITE_SCHEMA_VERSION }, (_, i) => i + 1),
    )
    await second.close()
  })

  it('refuses a database written by a newer schema version', { timeout: 10_000 }, async () => {
    const path = join(dir, 'newer.db')
    const storage = openSqliteStorage({ path })
    storage.db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)').run(SQLITE_SCHEMA_VERSION + 1)
    await storage.close()
    assert.throws(() => openSqliteStorage({ path }), (err: unknown) => err instanceof SchemaTooNewError && err.found === SQLITE_SCHEMA_VERSION + 1)
  })

  it('judges lock expiry and the default "now" of expiry filters by the injected Clock', { timeout: 10_000 }, async () => {
    const clock = new FixedClock(Date.UTC(2026, 0, 1))
    const storage = openSqliteStorage({ path: join(dir, 'clock.db'), clock })
    const held = await storage.locker.acquire('l', { ttlMs: 60_000, waitMs: 0 })
    assert.ok(held)
    clock.advance(59_999)
    assert.equal(await storage.locker.acquire('l', { ttlMs: 1_000, waitMs: 0 }), undefined)
    clock.advance(1)
    const taken = await storage.locker.acquire('l', { ttlMs: 1_000, waitMs: 0 })
    assert.ok(taken && taken.token > held.token)
    const day = 86_400_000
    const base = { subject: 'CN=x', sans: [], profile: 'server', fingerprint256: 'a'.repeat(64), pem: 'p' }
    await storage.inventory.add({ ...base, serial: '01', notBefore: 0, notAfter: clock.now() + 2 * day })
    await storage.inventory.add({ ...base, serial: '02', notBefore: 0, notAfter: clock.now() + 9 * day })
    assert.deepEqual((await storage.inventory.list({ expiringWithinMs: 7 * day })).map((r) => r.serial), ['1'])
    clock.advance(3 * day)
    assert.deepEqual((await storage.inventory.list({ expiringWithinMs: 7 * day })).map((r) => r.serial), ['2'])
    await storage.close()
  })

  it('keeps a write whose promise resolved even if the process is SIGKILLed right after', { timeout: 30_000 }, async () => {
    const path = join(dir, 'killed.db')
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'fixtures', 'sqlite-write-then-wait.ts'), path], {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    const version = await new Promise<number>((resolve, reject) => {
      let out = ''
      child.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        const match = /written (\d+)\n/.exec(out)
        if (match) {
          child.kill('SIGKILL')
          resolve(Number(match[1]))
        }
      })
      child.on('exit', (code, signal) => reject(new Error(`child exited early: ${code} ${signal}`)))
    })
    const [, signal] = (await new Promise((resolve) => child.once('exit', (...args) => resolve(args)))) as [number | null, string | null]
    assert.equal(signal, 'SIGKILL')
    const storage = openSqliteStorage({ path })
    assert.deepEqual(await storage.kv.get('durable/key'), { value: Buffer.from('survives SIGKILL'), version })
    assert.equal((await storage.inventory.get('c0ffee'))?.subject, 'CN=durable')
    await storage.close()
  })
})
