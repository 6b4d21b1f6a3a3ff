/**
 * Schema version 2 (`last_seen_at`) upgrades a version-1 inventory in place,
 * on SQLite and on a real Postgres: a database made with the version-1 schema
 * exactly as released (copied below, as it was shipped), holding a valid and
 * a revoked certificate, is opened by the current code; the rows survive
 * unchanged, have no lastSeenAt, and take sightings.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, it } from 'node:test'
import Database from 'better-sqlite3'
import pg from 'pg'
import { POSTGRES_SCHEMA_VERSION, openPostgresStorage } from '../../src/storage/postgres.js'
import { SQLITE_SCHEMA_VERSION, openSqliteStorage } from '../../src/storage/sqlite.js'
import type { CertificateInventory, CertificateRecord } from '../../src/storage/types.js'

const NOW = Date.UTC(2026, 2, 1)
const pem = '-----BEGIN CERTIFICATE-----\nAA==\n-----END CERTIFICATE-----\n'

/** What version 1 stored, as the current code must read it back. */
const expected: CertificateRecord[] = [
  { serial: 'a1', subject: 'CN=old', sans: ['DNS:old.example'], profile: 'partner', partner: 'acme', notBefore: NOW - 1000, notAfter: NOW + 1000, fingerprint256: 'a'.repeat(64), pem, status: 'valid' },
  { serial: 'b2', subject: 'CN=gone', sans: [], profile: 'client', notBefore: NOW - 1000, notAfter: NOW + 1000, fingerprint256: 'b'.repeat(64), pem, status: 'revoked', revokedAt: NOW, revocationReason: 'superseded' },
]

async function checkUpgraded(inv: CertificateInventory): Promise<void> {
  assert.deepEqual(await inv.list(), expected, 'rows kept, no lastSeenAt')
  await inv.markSeen([{ serial: 'a1', at: NOW + 5 }])
  assert.equal((await inv.get('a1'))?.lastSeenAt, NOW + 5)
  assert.deepEqual((await inv.list({ notSeenSince: NOW })).map((r) => r.serial), ['b2'])
}

describe('inventory schema upgrade to version 2', () => {
  it('SQLite: a version-1 file is migrated in place', { timeout: 20_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-upgrade-'))
    const path = join(dir, 'v1.db')
    try {
      const db = new Database(path)
      db.exec(`
        CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at INTEGER NOT NULL) STRICT;
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
        INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0);
      `)
      const insert = db.prepare('INSERT INTO certificates VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)')
      insert.run('a1', 'CN=old', '["DNS:old.example"]', 'partner', 'acme', NOW - 1000, NOW + 1000, 'valid', null, null, 'a'.repeat(64), pem)
      insert.run('b2', 'CN=gone', '[]', 'client', null, NOW - 1000, NOW + 1000, 'revoked', NOW, 'superseded', 'b'.repeat(64), pem)
      db.close()

      const storage = openSqliteStorage({ path })
      try {
        const versions = storage.db.prepare('SELECT version FROM schema_migrations ORDER BY version').all() as { version: number }[]
        assert.deepEqual(versions.map((v) => v.version), [1, 2])
        assert.equal(SQLITE_SCHEMA_VERSION, 2)
        await checkUpgraded(storage.inventory)
      } finally {
        await storage.close()
      }
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })

  it('Postgres: a version-1 schema is migrated in place', { timeout: 20_000 }, async () => {
    const pool = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: 2 }
    const schema = `portcullis_upgrade_${randomBytes(6).toString('hex')}`
    const s = `"${schema}"`
    const admin = new pg.Pool(pool)
    try {
      await admin.query(`
        CREATE SCHEMA ${s};
        CREATE TABLE ${s}.schema_migrations (version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now());
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
        INSERT INTO ${s}.schema_migrations (version) VALUES (1);
      `)
      const insert = `INSERT INTO ${s}.certificates VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`
      await admin.query(insert, ['a1', 'CN=old', ['DNS:old.example'], 'partner', 'acme', NOW - 1000, NOW + 1000, 'valid', null, null, 'a'.repeat(64), pem])
      await admin.query(insert, ['b2', 'CN=gone', [], 'client', null, NOW - 1000, NOW + 1000, 'revoked', NOW, 'superseded', 'b'.repeat(64), pem])

      const storage = await openPostgresStorage({ pool, schema })
      try {
        const { rows } = await storage.pool.query<{ version: number }>(`SELECT version FROM ${s}.schema_migrations ORDER BY version`)
        assert.deepEqual(rows.map((r) => r.version), [1, 2])
        assert.equal(POSTGRES_SCHEMA_VERSION, 2)
        await checkUpgraded(storage.inventory)
      } finally {
        await storage.close()
      }
    } finally {
      await admin.query(`DROP SCHEMA IF EXISTS ${s} CASCADE`)
      await admin.end()
    }
  })
})
