/**
 * Enrollment tokens over real storage: SQLite files opened twice (two
 * gateways sharing an inventory) and a real PostgreSQL (two pools), so the
 * one-time guarantee is shown where it matters — concurrent redeemers in
 * different connections.
 */
import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, it } from 'node:test'
import { openPostgresStorage, type PostgresStorage } from '../../storage/postgres.js'
import { openSqliteStorage } from '../../storage/sqlite.js'
import type { KeyValueStore } from '../../storage/types.js'
import { EnrollmentTokens, PRUNE_GRACE_MS, TOKEN_PREFIX, USED_TOKEN_PREFIX } from './est-tokens.js'

const HOUR = 3_600_000
const now = Date.UTC(2030, 0, 1)
const cleanups: (() => Promise<void>)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c()
})

/** A new SQLite file; `path` lets a second connection open it, as a second gateway would. */
function sqliteFile(): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-est-tokens-'))
  cleanups.push(async () => rmSync(dir, { recursive: true, force: true }))
  return join(dir, 'pki.db')
}

function openSqlite(path: string): KeyValueStore {
  const storage = openSqliteStorage({ path })
  cleanups.push(() => storage.close())
  return storage.kv
}

async function sqliteKv(): Promise<KeyValueStore> {
  return openSqlite(sqliteFile())
}

const pgPool = { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test', max: 5 }

async function openPostgres(schema: string): Promise<PostgresStorage> {
  try {
    const storage = await openPostgresStorage({ pool: pgPool, schema })
    cleanups.push(() => storage.close())
    return storage
  } catch (err) {
    throw new Error(`this test needs PostgreSQL at 127.0.0.1:5432 (user postgres, database test, trust auth): ${String(err)}`, { cause: err })
  }
}

describe('EnrollmentTokens', () => {
  it('stores only the SHA-256 of a token, with its partner, profile and times', async () => {
    const kv = await sqliteKv()
    const { token, id, record } = await new EnrollmentTokens(kv).create({ partner: 'globex', profile: 'partner', ttlMs: 24 * HOUR, now })
    assert.match(token, /^pct_est_[A-Za-z0-9_-]{43}$/)
    const keys = await kv.list('est/')
    assert.equal(keys.length, 1)
    assert.equal(keys[0]!.key, TOKEN_PREFIX + record.hash)
    assert.ok(record.hash.startsWith(id))
    const stored = (await kv.get(keys[0]!.key))!.value.toString('utf8')
    assert.ok(!stored.includes(token.slice(8)), 'the token itself is not stored')
    assert.deepEqual(JSON.parse(stored), { hash: record.hash, partner: 'globex', profile: 'partner', createdAt: now, expiresAt: now + 24 * HOUR })
  })

  it('redeems once; a second use is est_token_used and names the serial it produced', async () => {
    const tokens = new EnrollmentTokens(await sqliteKv())
    const { token } = await tokens.create({ partner: 'globex', profile: 'partner', ttlMs: HOUR, now })
    const first = await tokens.claim(token, now + 1)
    assert.ok(first.ok)
    assert.equal(first.record.partner, 'globex')
    await tokens.complete(first, 'abc123', now + 2)
    const second = await tokens.claim(token, now + 3)
    assert.equal(second.ok, false)
    assert.equal(!second.ok && second.reason, 'est_token_used')
    assert.match(!second.ok ? second.detail : '', /serial abc123/)
  })

  it('refuses an expired token, and a well-formed token that was never made', async () => {
    const tokens = new EnrollmentTokens(await sqliteKv())
    const { token } = await tokens.create({ partner: 'globex', profile: 'partner', ttlMs: HOUR, now })
    const late = await tokens.claim(token, now + HOUR)
    assert.equal(!late.ok && late.reason, 'est_token_expired')
    const forged = await tokens.claim(`pct_est_${'A'.repeat(43)}`, now)
    assert.equal(!forged.ok && forged.reason, 'est_token_invalid')
    const garbage = await tokens.claim('not a token', now)
    assert.equal(!garbage.ok && garbage.reason, 'est_token_invalid')
  })

  it('a released claim (CSR refused) can be redeemed again', async () => {
    const tokens = new EnrollmentTokens(await sqliteKv())
    const { token } = await tokens.create({ partner: 'globex', profile: 'partner', ttlMs: HOUR, now })
    const first = await tokens.claim(token, now)
    assert.ok(first.ok)
    const meanwhile = await tokens.claim(token, now)
    assert.equal(!meanwhile.ok && meanwhile.reason, 'est_token_invalid', 'out while being redeemed')
    await tokens.release(first)
    assert.ok((await tokens.claim(token, now)).ok)
  })

  it('revokes by id prefix; lists active, expired and used tokens', async () => {
    const tokens = new EnrollmentTokens(await sqliteKv())
    const a = await tokens.create({ partner: 'a', profile: 'partner', ttlMs: HOUR, now })
    const b = await tokens.create({ partner: 'b', profile: 'partner', ttlMs: 2 * HOUR, now: now + 1 })
    const c = await tokens.create({ partner: 'c', profile: 'spiffe', ttlMs: HOUR, now: now + 2 })
    const claimed = await tokens.claim(c.token, now + 3)
    assert.ok(claimed.ok)
    await tokens.complete(claimed, 'ff01', now + 4)
    const listed = await tokens.list(now + HOUR + 10)
    assert.deepEqual(
      listed.map((t) => [t.partner, t.status, t.serial]),
      [
        ['a', 'expired', undefined],
        ['b', 'active', undefined],
        ['c', 'used', 'ff01'],
      ],
    )
    assert.deepEqual(await tokens.revoke('0000000000'), { error: 'not_found' })
    const revoked = await tokens.revoke(b.id.slice(0, 8))
    assert.ok('revoked' in revoked && revoked.revoked.partner === 'b')
    const again = await tokens.claim(b.token, now + 5)
    assert.equal(!again.ok && again.reason, 'est_token_invalid')
    assert.ok((await tokens.claim(a.token, now + 5)).ok, 'the other token is untouched')
  })

  it('prunes tokens and used records a grace period after expiry, not before', async () => {
    const kv = await sqliteKv()
    const tokens = new EnrollmentTokens(kv)
    const old = await tokens.create({ partner: 'a', profile: 'partner', ttlMs: HOUR, now })
    const used = await tokens.create({ partner: 'b', profile: 'partner', ttlMs: HOUR, now })
    const claim = await tokens.claim(used.token, now)
    assert.ok(claim.ok)
    await tokens.complete(claim, '01', now)
    await tokens.create({ partner: 'c', profile: 'partner', ttlMs: 30 * 24 * HOUR, now })
    assert.equal(await tokens.prune(now + HOUR + PRUNE_GRACE_MS - 1), 0)
    assert.equal(await tokens.prune(now + HOUR + PRUNE_GRACE_MS), 2)
    assert.deepEqual((await kv.list(USED_TOKEN_PREFIX)).length, 0)
    const left = await tokens.list(now)
    assert.deepEqual(left.map((t) => t.partner), ['c'])
    assert.equal(!(await tokens.claim(old.token, now)).ok, true)
  })
})

describe('one-time use across gateways sharing storage', () => {
  it('SQLite: of 20 concurrent redeemers on two connections, exactly one wins', async () => {
    const path = sqliteFile()
    const a = new EnrollmentTokens(openSqlite(path))
    const b = new EnrollmentTokens(openSqlite(path))
    const { token } = await a.create({ partner: 'globex', profile: 'partner', ttlMs: HOUR, now })
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).claim(token, now)))
    assert.equal(results.filter((r) => r.ok).length, 1)
    assert.ok(results.filter((r) => !r.ok).every((r) => !r.ok && (r.reason === 'est_token_used' || r.reason === 'est_token_invalid')))
  })

  it('PostgreSQL: of 20 concurrent redeemers on two pools, exactly one wins', async () => {
    const schema = `portcullis_test_${randomBytes(6).toString('hex')}`
    const first = await openPostgres(schema)
    cleanups.push(async () => void (await first.pool.query(`DROP SCHEMA "${schema}" CASCADE`)))
    const a = new EnrollmentTokens(first.kv)
    const b = new EnrollmentTokens((await openPostgres(schema)).kv)
    for (let round = 0; round < 5; round++) {
      const { token } = await a.create({ partner: 'globex', profile: 'partner', ttlMs: HOUR, now })
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? a : b).claim(token, now)))
      assert.equal(results.filter((r) => r.ok).length, 1, `round ${round}`)
    }
  })
})
