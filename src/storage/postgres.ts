/**
 * Postgres storage (`pg`): for several gateway instances sharing control-plane
 * state. Everything lives in one schema named by the operator, so one database
 * can hold several deployments (and tests use a throwaway schema each).
 *
 * - Each operation is one statement, atomic by itself; CAS and lock takeover
 *   are conditional UPDATE/upserts, which Postgres re-checks after waiting on a
 *   concurrent writer, so no read-then-write race exists.
 * - Versions and fencing tokens come from sequences: increasing, never reused.
 * - Lock expiry is judged by the server's clock (`clock_timestamp()`), one
 *   clock for every instance, so gateway clock skew cannot let two hold a lock.
 * - Migrations are versioned in `schema_migrations` and serialised between
 *   instances starting at once by a transaction-scoped advisory lock.
 */
import pg from 'pg'
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

/** Milliseconds since the epoch by the server's clock (not the transaction start, which `now()` is). */
const NOW_MS = `(floor(extract(epoch from clock_timestamp()) * 1000))::bigint`

/** The schema, one entry per version, never edited once released. `S` is the quoted schema name. */
const migrations: readonly { readonly version: number; readonly sql: (s: string) => string }[] = [
  {
    version: 1,
    sql: (s) => `
      CREATE SEQUENCE ${s}.kv_version;
      CREATE SEQUENCE ${s}.lock_token;
      CREATE TABLE ${s}.kv (key bytea PRIMARY KEY, value bytea NOT NULL, version bigint NOT NULL);
      CREATE TABLE ${s}.locks (name text PRIMARY KEY, token bigint NOT NULL, expires_at bigint NOT NULL);
      CREATE TABLE ${s}.certificates (
        serial text COLLATE "C" PRIMARY KEY,
        subject text NOT NULL,
        sans text[] NOT NULL,
        profile text NOT NULL,
        partner text,
        not_before bigint NOT NULL,
        not_after bigint NOT NULL,
        status text NOT NULL CHECK (status IN ('valid', 'revoked')),
        revoked_at bigint,
        revocation_reason text,
        fingerprint256 text NOT NULL,
        pem text NOT NULL
      );
      CREATE INDEX ON ${s}.certificates (not_after);
      CREATE INDEX ON ${s}.certificates (partner, serial);
      CREATE INDEX ON ${s}.certificates (status, revoked_at, serial);
    `,
  },
  {
    // Which certificate a partner actually presents (markSeen); NULL until first seen.
    version: 2,
    sql: (s) => `ALTER TABLE ${s}.certificates ADD COLUMN last_seen_at bigint;`,
  },
]

/** The newest schema version this code knows. */
export const POSTGRES_SCHEMA_VERSION = migrations.length

export interface PostgresStorageOptions {
  /** Connection settings for the pool (host, port, user, database, ssl, max...). */
  readonly pool: pg.PoolConfig
  /** The schema holding every table: lower-case letters, digits and `_`, created if missing. */
  readonly schema: string
  /** The default "now" of inventory filters. Lock expiry uses the server's clock. */
  readonly clock?: Clock
  /**
   * Errors of idle pooled connections (server restart, network). The pool drops
   * the broken connection and the next query opens a new one; this is for logging.
   */
  readonly onIdleError?: (err: Error) => void
}

/** All three interfaces in one Postgres schema. */
export type PostgresStorage = Storage & { readonly inventory: CertificateInventory; readonly pool: pg.Pool; readonly schema: string }

/** Connects, creates the schema if missing and migrates it. Rejects if the server cannot be reached. */
export async function openPostgresStorage(options: PostgresStorageOptions): Promise<PostgresStorage> {
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) throw new Error('schema must match ^[a-z_][a-z0-9_]{0,62}$')
  const s = `"${options.schema}"`
  const pool = new pg.Pool({ connectionTimeoutMillis: 5_000, ...options.pool })
  pool.on('error', options.onIdleError ?? (() => undefined))
  try {
    await migrate(pool, options.schema, s)
  } catch (err) {
    await pool.end()
    throw err
  }
  const clock = options.clock ?? systemClock
  return {
    pool,
    schema: options.schema,
    kv: new PostgresKeyValueStore(pool, s),
    locker: new PostgresLocker(pool, s),
    inventory: new PostgresCertificateInventory(pool, s, clock),
    close: () => pool.end(),
  }
}

async function migrate(pool: pg.Pool, schema: string, s: string): Promise<void> {
  const client = await pool.connect()
  try {
    await client.query('BEGIN')
    // Two instances starting together must not both apply version 1.
    await client.query(`SELECT pg_advisory_xact_lock(hashtext('portcullis-migrate:' || $1))`, [schema])
    await client.query(`CREATE SCHEMA IF NOT EXISTS ${s}`)
    await client.query(`CREATE TABLE IF NOT EXISTS ${s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())`)
    const { rows } = await client.query<{ v: number | null }>(`SELECT max(version) AS v FROM ${s}.schema_migrations`)
    const current = rows[0]?.v ?? 0
    if (current > POSTGRES_SCHEMA_VERSION) throw new SchemaTooNewError(current, POSTGRES_SCHEMA_VERSION)
    for (const m of migrations) {
      if (m.version <= current) continue
      await client.query(m.sql(s))
      await client.query(`INSERT INTO ${s}.schema_migrations (version) VALUES ($1)`, [m.version])
    }
    await client.query('COMMIT')
  } catch (err) {
    await client.query('ROLLBACK').catch(() => undefined)
    throw err
  } finally {
    client.release()
  }
}

/** KeyValueStore over `<schema>.kv`. */
export class PostgresKeyValueStore implements KeyValueStore {
  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
  ) {}

  async get(key: string): Promise<VersionedValue | undefined> {
    const { rows } = await this.pool.query<{ value: Buffer; version: string }>(`SELECT value, version FROM ${this.s}.kv WHERE key = $1`, [checkKey(key)])
    const row = rows[0]
    return row && { value: row.value, version: Number(row.version) }
  }

  async put(key: string, value: Buffer, options: PutOptions = {}): Promise<PutResult> {
    const keyBytes = checkKey(key)
    checkValue(value)
    checkVersion(options.ifVersion, true)
    const s = this.s
    const next = `nextval('${s}.kv_version')`
    const { rows } =
      typeof options.ifVersion === 'number'
        ? await this.pool.query<{ version: string }>(`UPDATE ${s}.kv SET value = $2, version = ${next} WHERE key = $1 AND version = $3 RETURNING version`, [keyBytes, value, options.ifVersion])
        : await this.pool.query<{ version: string }>(
            `INSERT INTO ${s}.kv (key, value, version) VALUES ($1, $2, ${next}) ON CONFLICT (key) DO ${
              options.ifVersion === 'absent' ? 'NOTHING' : 'UPDATE SET value = EXCLUDED.value, version = EXCLUDED.version'
            } RETURNING version`,
            [keyBytes, value],
          )
    const row = rows[0]
    return row ? { version: Number(row.version) } : { conflict: true }
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    const keyBytes = checkKey(key)
    checkVersion(options.ifVersion, false)
    if (options.ifVersion === undefined) {
      const result = await this.pool.query(`DELETE FROM ${this.s}.kv WHERE key = $1`, [keyBytes])
      return { deleted: (result.rowCount ?? 0) > 0 }
    }
    const result = await this.pool.query(`DELETE FROM ${this.s}.kv WHERE key = $1 AND version = $2`, [keyBytes, options.ifVersion])
    return (result.rowCount ?? 0) > 0 ? { deleted: true } : { conflict: true }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<readonly ListedKey[]> {
    const start = checkPrefix(prefix)
    const after = options.after === undefined ? Buffer.alloc(0) : checkPrefix(options.after)
    const limit = checkLimit(options.limit)
    const { rows } = await this.pool.query<{ key: Buffer; version: string }>(
      `SELECT key, version FROM ${this.s}.kv WHERE key >= $1 AND key < $2 AND key > $3 ORDER BY key LIMIT $4`,
      [start, prefixEnd(start), after, limit],
    )
    return rows.map((r) => ({ key: r.key.toString('utf8'), version: Number(r.version) }))
  }
}

/** Locker over `<schema>.locks`; expiry by the server's clock. */
export class PostgresLocker implements Locker {
  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
  ) {}

  async acquire(name: string, options: AcquireOptions): Promise<Lock | undefined> {
    checkAcquire(name, options)
    const s = this.s
    const token = await pollForLock(async () => {
      // Inserts a free lock or takes over an expired one; a live one makes the WHERE false and returns no row.
      const { rows } = await this.pool.query<{ token: string }>(
        `INSERT INTO ${s}.locks AS held (name, token, expires_at) VALUES ($1, nextval('${s}.lock_token'), ${NOW_MS} + $2)
         ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at
         WHERE held.expires_at <= ${NOW_MS}
         RETURNING token`,
        [name, options.ttlMs],
      )
      return rows[0] && Number(rows[0].token)
    }, options)
    return token === undefined ? undefined : this.lock(name, token)
  }

  private lock(name: string, token: number): Lock {
    const { pool, s } = this
    return {
      name,
      token,
      release: async () => {
        const { rows } = await pool.query<{ ours: boolean }>(`DELETE FROM ${s}.locks WHERE name = $1 AND token = $2 RETURNING expires_at > ${NOW_MS} AS ours`, [name, token])
        return rows[0]?.ours === true
      },
      extend: async (ttlMs: number) => {
        checkAcquire(name, { ttlMs, waitMs: 0 })
        const result = await pool.query(`UPDATE ${s}.locks SET expires_at = ${NOW_MS} + $3 WHERE name = $1 AND token = $2 AND expires_at > ${NOW_MS}`, [name, token, ttlMs])
        return (result.rowCount ?? 0) > 0
      },
    }
  }
}

interface CertificateRow {
  serial: string
  subject: string
  sans: string[]
  profile: string
  partner: string | null
  not_before: string
  not_after: string
  status: 'valid' | 'revoked'
  revoked_at: string | null
  revocation_reason: RevocationReason | null
  fingerprint256: string
  pem: string
  last_seen_at: string | null
}

function toRecord(row: CertificateRow): CertificateRecord {
  return {
    serial: row.serial,
    subject: row.subject,
    sans: row.sans,
    profile: row.profile,
    ...(row.partner !== null ? { partner: row.partner } : {}),
    notBefore: Number(row.not_before),
    notAfter: Number(row.not_after),
    fingerprint256: row.fingerprint256,
    pem: row.pem,
    status: row.status,
    ...(row.revoked_at !== null ? { revokedAt: Number(row.revoked_at) } : {}),
    ...(row.revocation_reason !== null ? { revocationReason: row.revocation_reason } : {}),
    ...(row.last_seen_at !== null ? { lastSeenAt: Number(row.last_seen_at) } : {}),
  }
}

/** CertificateInventory over `<schema>.certificates`. */
export class PostgresCertificateInventory implements CertificateInventory {
  constructor(
    private readonly pool: pg.Pool,
    private readonly s: string,
    private readonly clock: Clock,
  ) {}

  async add(record: NewCertificateRecord): Promise<CertificateRecord> {
    const r = checkNewRecord(record)
    const result = await this.pool.query(
      `INSERT INTO ${this.s}.certificates (serial, subject, sans, profile, partner, not_before, not_after, status, fingerprint256, pem)
       VALUES ($1, $2, $3, $4, $5, $6, $7, 'valid', $8, $9) ON CONFLICT (serial) DO NOTHING`,
      [r.serial, r.subject, r.sans, r.profile, r.partner ?? null, r.notBefore, r.notAfter, r.fingerprint256, r.pem],
    )
    if ((result.rowCount ?? 0) === 0) throw new DuplicateSerialError(r.serial)
    return r
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    const { rows } = await this.pool.query<CertificateRow>(`SELECT * FROM ${this.s}.certificates WHERE serial = $1`, [normalizeSerial(serial)])
    return rows[0] && toRecord(rows[0])
  }

  async list(filter: InventoryFilter = {}): Promise<readonly CertificateRecord[]> {
    const limit = checkLimit(filter.limit)
    const where: string[] = []
    const args: (string | number)[] = []
    const match = (clause: (p: (v: string | number) => string) => string): void => {
      where.push(clause((v) => `$${args.push(v)}`))
    }
    if (filter.after !== undefined) match((p) => `serial > ${p(normalizeSerial(filter.after!))}`)
    if (filter.expiringWithinMs !== undefined) {
      const now = filterNow(filter, this.clock)
      match((p) => `not_after >= ${p(now)} AND not_after <= ${p(now + filter.expiringWithinMs!)}`)
    }
    if (filter.partner !== undefined) match((p) => `partner = ${p(filter.partner!)}`)
    if (filter.status !== undefined) match((p) => `status = ${p(filter.status!)}`)
    if (filter.profile !== undefined) match((p) => `profile = ${p(filter.profile!)}`)
    if (filter.notSeenSince !== undefined) match((p) => `(last_seen_at IS NULL OR last_seen_at < ${p(filter.notSeenSince!)})`)
    args.push(limit)
    const sql = `SELECT * FROM ${this.s}.certificates ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY serial LIMIT $${args.length}`
    const { rows } = await this.pool.query<CertificateRow>(sql, args)
    return rows.map(toRecord)
  }

  async revoke(serial: string, reason: RevocationReason, at: number): Promise<RevokeResult> {
    checkRevocation(reason, at)
    const key = normalizeSerial(serial)
    // Status only moves valid → revoked, so the conditional UPDATE decides the race; the read after it only explains a refusal.
    const updated = await this.pool.query<CertificateRow>(
      `UPDATE ${this.s}.certificates SET status = 'revoked', revoked_at = $2, revocation_reason = $3 WHERE serial = $1 AND status = 'valid' RETURNING *`,
      [key, at, reason],
    )
    if (updated.rows[0]) return { outcome: 'revoked', record: toRecord(updated.rows[0]) }
    const existing = await this.get(key)
    if (!existing) return { outcome: 'not_found' }
    return { outcome: existing.revocationReason === reason ? 'already_revoked' : 'reason_conflict', record: existing }
  }

  async revokedSince(sinceMs: number): Promise<readonly CertificateRecord[]> {
    const { rows } = await this.pool.query<CertificateRow>(`SELECT * FROM ${this.s}.certificates WHERE status = 'revoked' AND revoked_at >= $1 ORDER BY revoked_at, serial`, [sinceMs])
    return rows.map(toRecord)
  }

  async markSeen(entries: readonly Sighting[]): Promise<void> {
    const latest = checkSightings(entries)
    if (latest.size === 0) return
    // One statement for the batch; the condition makes a concurrent older sighting a no-op, so the time never moves back.
    await this.pool.query(
      `UPDATE ${this.s}.certificates AS c SET last_seen_at = v.at FROM unnest($1::text[], $2::bigint[]) AS v(serial, at)
       WHERE c.serial = v.serial AND (c.last_seen_at IS NULL OR c.last_seen_at < v.at)`,
      [[...latest.keys()], [...latest.values()]],
    )
  }
}
