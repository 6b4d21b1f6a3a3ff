/**
 * SQLite storage (better-sqlite3): the default for a single gateway instance,
 * or several processes on one host sharing the file.
 *
 * - Durability: WAL with `synchronous=FULL`, so a write whose promise resolved
 *   survives a crash of the process and of the machine.
 * - The file (and SQLite's -wal/-shm files, which copy its mode) is 0600: it
 *   holds certificates and control-plane state. An existing file with looser
 *   bits is tightened.
 * - The schema is versioned in `schema_migrations`; opening a file written by
 *   a newer Portcullis is refused rather than guessed at.
 * - better-sqlite3 is synchronous: each call blocks the event loop for its
 *   duration (an fsync per write). That suits the control plane; the request
 *   path never calls storage.
 * - Lock expiry is judged by the injected Clock, so processes sharing the file
 *   share the host's clock.
 */
import { chmodSync, closeSync, constants, fstatSync, openSync } from 'node:fs'
import Database from 'better-sqlite3'
import { type Clock, systemClock } from '../shared/clock.js'
import {
  type AcquireOptions,
  type CertificateInventory,
  type CertificateRecord,
  type DeleteOptions,
  type DeleteResult,
  type InventoryFilter,
  type KeyValueStore,
  type ListOptions,
  type ListedKey,
  type Lock,
  type Locker,
  type NewCertificateRecord,
  type PutOptions,
  type PutResult,
  type RevocationReason,
  type RevokeResult,
  type Sighting,
  type Storage,
  type VersionedValue,
  DuplicateSerialError,
  SchemaTooNewError,
  checkAcquire,
  checkKey,
  checkLimit,
  checkNewRecord,
  checkPrefix,
  checkRevocation,
  checkSightings,
  checkValue,
  checkVersion,
  filterNow,
  normalizeSerial,
  pollForLock,
  prefixEnd,
} from './types.js'

type Db = Database.Database

/**
 * The schema, one entry per version, applied in order and never edited once
 * released (add a new entry instead). Keys are BLOBs of their UTF-8 bytes so
 * that SQLite's memcmp order is the contract's order and prefixes are ranges.
 */
const migrations: readonly { readonly version: number; readonly sql: string }[] = [
  {
    version: 1,
    sql: `
      CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL) STRICT;
      INSERT INTO counters (name, value) VALUES ('kv_version', 0), ('lock_token', 0);
      CREATE TABLE kv (key BLOB PRIMARY KEY, value BLOB NOT NULL, version INTEGER NOT NULL) STRICT;
      CREATE TABLE locks (name TEXT PRIMARY KEY, token INTEGER NOT NULL, expires_at INTEGER NOT NULL) STRICT;
      CREATE TABLE certificates (
        serial TEXT PRIMARY KEY,
        subject TEXT NOT NULL,
        sans TEXT NOT NULL,
        profile TEXT NOT NULL,
        partner TEXT,
        not_before INTEGER NOT NULL,
        not_after INTEGER NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('valid', 'revoked')),
        revoked_at INTEGER,
        revocation_reason TEXT,
        fingerprint256 TEXT NOT NULL,
        pem TEXT NOT NULL
      ) STRICT;
      CREATE INDEX certificates_not_after ON certificates (not_after);
      CREATE INDEX certificates_partner ON certificates (partner, serial);
      CREATE INDEX certificates_revoked ON certificates (status, revoked_at, serial);
    `,
  },
  {
    // Which certificate a partner actually presents (markSeen); NULL until first seen.
    version: 2,
    sql: `ALTER TABLE certificates ADD COLUMN last_seen_at INTEGER;`,
  },
]

/** The newest schema version this code knows. */
export const SQLITE_SCHEMA_VERSION = migrations.length

export interface SqliteStorageOptions {
  /** The database file; created 0600 if missing. */
  readonly path: string
  readonly clock?: Clock
  /** How long a write waits for another process's write lock; default 5000 ms. */
  readonly busyTimeoutMs?: number
}

/** All three interfaces over one SQLite file. */
export type SqliteStorage = Storage & { readonly inventory: CertificateInventory; readonly db: Db }

/** Opens (creating and migrating if needed) the SQLite file at `path`. */
export function openSqliteStorage(options: SqliteStorageOptions): SqliteStorage {
  createPrivateFile(options.path)
  const db = new Database(options.path)
  try {
    const mode = db.pragma('journal_mode = WAL', { simple: true })
    if (mode !== 'wal') throw new Error(`SQLite refused WAL mode (got ${String(mode)}); a WAL-capable local file system is required`)
    db.pragma('synchronous = FULL')
    db.pragma(`busy_timeout = ${Math.trunc(options.busyTimeoutMs ?? 5000)}`)
    const clock = options.clock ?? systemClock
    migrate(db, clock)
    return {
      db,
      kv: new SqliteKeyValueStore(db),
      locker: new SqliteLocker(db, clock),
      inventory: new SqliteCertificateInventory(db, clock),
      close: async () => {
        db.close()
      },
    }
  } catch (err) {
    db.close()
    throw err
  }
}

/** Creates the file 0600 without following a symlink, and tightens an existing one. */
function createPrivateFile(path: string): void {
  if (path === ':memory:' || path === '') return
  const fd = openSync(path, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600)
  try {
    const info = fstatSync(fd)
    if (!info.isFile()) throw new Error(`${path} is not a regular file`)
    if ((info.mode & 0o777) !== 0o600) chmodSync(path, 0o600)
  } finally {
    closeSync(fd)
  }
}

function migrate(db: Db, clock: Clock): void {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT')
  db.transaction(() => {
    const row = db.prepare('SELECT max(version) AS v FROM schema_migrations').get() as { v: number | null }
    const current = row.v ?? 0
    if (current > SQLITE_SCHEMA_VERSION) {
      throw new SchemaTooNewError(current, SQLITE_SCHEMA_VERSION)
    }
    for (const m of migrations) {
      if (m.version <= current) continue
      db.exec(m.sql)
      db.prepare('INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)').run(m.version, clock.now())
    }
  }).immediate()
}

function nextCounter(db: Db, name: string): number {
  return (db.prepare('UPDATE counters SET value = value + 1 WHERE name = ? RETURNING value').get(name) as { value: number }).value
}

/** KeyValueStore over the `kv` table; each write is one IMMEDIATE transaction. */
export class SqliteKeyValueStore implements KeyValueStore {
  private readonly putTx
  constructor(private readonly db: Db) {
    this.putTx = db.transaction((key: Buffer, value: Buffer, ifVersion: number | 'absent' | undefined): PutResult => {
      const current = db.prepare('SELECT version FROM kv WHERE key = ?').get(key) as { version: number } | undefined
      if (ifVersion === 'absent' && current) return { conflict: true }
      if (typeof ifVersion === 'number' && current?.version !== ifVersion) return { conflict: true }
      const version = nextCounter(db, 'kv_version')
      db.prepare('INSERT INTO kv (key, value, version) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value, version = excluded.version').run(key, value, version)
      return { version }
    })
  }

  async get(key: string): Promise<VersionedValue | undefined> {
    const row = this.db.prepare('SELECT value, version FROM kv WHERE key = ?').get(checkKey(key)) as VersionedValue | undefined
    return row && { value: row.value, version: row.version }
  }

  async put(key: string, value: Buffer, options: PutOptions = {}): Promise<PutResult> {
    const keyBytes = checkKey(key)
    checkValue(value)
    checkVersion(options.ifVersion, true)
    return this.putTx.immediate(keyBytes, value, options.ifVersion)
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    const keyBytes = checkKey(key)
    checkVersion(options.ifVersion, false)
    if (options.ifVersion === undefined) {
      return { deleted: this.db.prepare('DELETE FROM kv WHERE key = ?').run(keyBytes).changes > 0 }
    }
    const changes = this.db.prepare('DELETE FROM kv WHERE key = ? AND version = ?').run(keyBytes, options.ifVersion).changes
    return changes > 0 ? { deleted: true } : { conflict: true }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<readonly ListedKey[]> {
    const start = checkPrefix(prefix)
    const after = options.after === undefined ? Buffer.alloc(0) : checkPrefix(options.after)
    const limit = checkLimit(options.limit)
    const rows = this.db
      .prepare('SELECT key, version FROM kv WHERE key >= ? AND key < ? AND key > ? ORDER BY key LIMIT ?')
      .all(start, prefixEnd(start), after, limit) as { key: Buffer; version: number }[]
    return rows.map((r) => ({ key: r.key.toString('utf8'), version: r.version }))
  }
}

/** Locker over the `locks` table; expiry by the injected Clock. */
export class SqliteLocker implements Locker {
  private readonly tryTx
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {
    this.tryTx = db.transaction((name: string, ttlMs: number): number | undefined => {
      const now = clock.now()
      const held = db.prepare('SELECT expires_at FROM locks WHERE name = ?').get(name) as { expires_at: number } | undefined
      if (held && held.expires_at > now) return undefined
      const token = nextCounter(db, 'lock_token')
      db.prepare('INSERT INTO locks (name, token, expires_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at').run(name, token, now + ttlMs)
      return token
    })
  }

  async acquire(name: string, options: AcquireOptions): Promise<Lock | undefined> {
    checkAcquire(name, options)
    const token = await pollForLock(async () => this.tryTx.immediate(name, options.ttlMs), options)
    return token === undefined ? undefined : this.lock(name, token)
  }

  private lock(name: string, token: number): Lock {
    const { db, clock } = this
    return {
      name,
      token,
      release: async () => {
        const row = db.prepare('DELETE FROM locks WHERE name = ? AND token = ? RETURNING expires_at').get(name, token) as { expires_at: number } | undefined
        return row !== undefined && row.expires_at > clock.now()
      },
      extend: async (ttlMs: number) => {
        checkAcquire(name, { ttlMs, waitMs: 0 })
        const now = clock.now()
        return db.prepare('UPDATE locks SET expires_at = ? WHERE name = ? AND token = ? AND expires_at > ?').run(now + ttlMs, name, token, now).changes > 0
      },
    }
  }
}

interface CertificateRow {
  serial: string
  subject: string
  sans: string
  profile: string
  partner: string | null
  not_before: number
  not_after: number
  status: 'valid' | 'revoked'
  revoked_at: number | null
  revocation_reason: RevocationReason | null
  fingerprint256: string
  pem: string
  last_seen_at: number | null
}

function toRecord(row: CertificateRow): CertificateRecord {
  return {
    serial: row.serial,
    subject: row.subject,
    sans: JSON.parse(row.sans) as string[],
    profile: row.profile,
    ...(row.partner !== null ? { partner: row.partner } : {}),
    notBefore: row.not_before,
    notAfter: row.not_after,
    fingerprint256: row.fingerprint256,
    pem: row.pem,
    status: row.status,
    ...(row.revoked_at !== null ? { revokedAt: row.revoked_at } : {}),
    ...(row.revocation_reason !== null ? { revocationReason: row.revocation_reason } : {}),
    ...(row.last_seen_at !== null ? { lastSeenAt: row.last_seen_at } : {}),
  }
}

/** CertificateInventory over the `certificates` table. */
export class SqliteCertificateInventory implements CertificateInventory {
  constructor(
    private readonly db: Db,
    private readonly clock: Clock,
  ) {}

  async add(record: NewCertificateRecord): Promise<CertificateRecord> {
    const r = checkNewRecord(record)
    const result = this.db
      .prepare(
        `INSERT INTO certificates (serial, subject, sans, profile, partner, not_before, not_after, status, fingerprint256, pem)
         VALUES (?, ?, ?, ?, ?, ?, ?, 'valid', ?, ?) ON CONFLICT (serial) DO NOTHING`,
      )
      .run(r.serial, r.subject, JSON.stringify(r.sans), r.profile, r.partner ?? null, r.notBefore, r.notAfter, r.fingerprint256, r.pem)
    if (result.changes === 0) throw new DuplicateSerialError(r.serial)
    return r
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    const row = this.db.prepare('SELECT * FROM certificates WHERE serial = ?').get(normalizeSerial(serial)) as CertificateRow | undefined
    return row && toRecord(row)
  }

  async list(filter: InventoryFilter = {}): Promise<readonly CertificateRecord[]> {
    const limit = checkLimit(filter.limit)
    const where: string[] = []
    const args: (string | number)[] = []
    const match = (clause: string, ...values: (string | number)[]): void => {
      where.push(clause)
      args.push(...values)
    }
    if (filter.after !== undefined) match('serial > ?', normalizeSerial(filter.after))
    if (filter.expiringWithinMs !== undefined) {
      const now = filterNow(filter, this.clock)
      match('not_after >= ? AND not_after <= ?', now, now + filter.expiringWithinMs)
    }
    if (filter.partner !== undefined) match('partner = ?', filter.partner)
    if (filter.status !== undefined) match('status = ?', filter.status)
    if (filter.profile !== undefined) match('profile = ?', filter.profile)
    if (filter.notSeenSince !== undefined) match('(last_seen_at IS NULL OR last_seen_at < ?)', filter.notSeenSince)
    const sql = `SELECT * FROM certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY serial LIMIT ?`
    return (this.db.prepare(sql).all(...args, limit) as CertificateRow[]).map(toRecord)
  }

  async revoke(serial: string, reason: RevocationReason, at: number): Promise<RevokeResult> {
    checkRevocation(reason, at)
    const key = normalizeSerial(serial)
    return this.db.transaction((): RevokeResult => {
      const row = this.db
        .prepare(`UPDATE certificates SET status = 'revoked', revoked_at = ?, revocation_reason = ? WHERE serial = ? AND status = 'valid' RETURNING *`)
        .get(at, reason, key) as CertificateRow | undefined
      if (row) return { outcome: 'revoked', record: toRecord(row) }
      const existing = this.db.prepare('SELECT * FROM certificates WHERE serial = ?').get(key) as CertificateRow | undefined
      if (!existing) return { outcome: 'not_found' }
      return { outcome: existing.revocation_reason === reason ? 'already_revoked' : 'reason_conflict', record: toRecord(existing) }
    }).immediate()
  }

  async revokedSince(sinceMs: number): Promise<readonly CertificateRecord[]> {
    const rows = this.db.prepare(`SELECT * FROM certificates WHERE status = 'revoked' AND revoked_at >= ? ORDER BY revoked_at, serial`).all(sinceMs) as CertificateRow[]
    return rows.map(toRecord)
  }

  async markSeen(entries: readonly Sighting[]): Promise<void> {
    const latest = checkSightings(entries)
    if (latest.size === 0) return
    // One transaction: one fsync for the whole batch.
    const update = this.db.prepare('UPDATE certificates SET last_seen_at = ? WHERE serial = ? AND (last_seen_at IS NULL OR last_seen_at < ?)')
    this.db.transaction(() => {
      for (const [serial, at] of latest) update.run(at, serial, at)
    }).immediate()
  }
}
