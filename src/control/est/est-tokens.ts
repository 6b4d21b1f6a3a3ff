/**
 * One-time enrollment tokens for EST `simpleenroll`: made by `portcullis ca
 * token create`, each bound to one partner and profile, redeemed once at any
 * gateway that shares the PKI storage.
 *
 * Decisions:
 * - Only the SHA-256 of a token is stored (`est/tokens/<hex>`), with its
 *   partner, profile and times; the token itself is printed once and never
 *   written or logged. A copy of the database grants nothing. The token has
 *   256 random bits, so a plain hash (no salt, no slow KDF) is enough: there
 *   is nothing to guess.
 * - The storage key is the hash, so a lookup compares no secret; the stored
 *   hash is still compared to the presented one with `timingSafeEqual`, so no
 *   path compares secrets in variable time.
 * - Redeeming is a compare-and-set delete (`delete(key, { ifVersion })`):
 *   among any number of gateways presenting the same token at once, exactly
 *   one wins; the others get `est_token_used`. The winner deletes first and
 *   signs second, so a crash in between loses the token, never issues twice.
 * - A CSR refused by policy gives the token back (re-created with
 *   `ifVersion: 'absent'`), so a partner can fix the request; only an issued
 *   certificate uses the token up. While it is out, a concurrent redeemer is
 *   told `est_token_invalid`.
 * - A used token leaves a record under `est/used-tokens/<hex>` (when, and the
 *   serial it produced), so a second use is answered `est_token_used` rather
 *   than "unknown", and `ca token list` shows what each token became.
 * - Expired tokens and used records are deleted `PRUNE_GRACE_MS` after the
 *   token's expiry (by `prune`, which the EST server runs at start and hourly),
 *   so a late retry still gets a precise answer for a week.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'
import { z } from 'zod'
import { MAX_LIST_LIMIT, type KeyValueStore } from '../../storage/types.js'

/** Key prefix of unused tokens. */
export const TOKEN_PREFIX = 'est/tokens/'
/** Key prefix of the records used tokens leave behind. */
export const USED_TOKEN_PREFIX = 'est/used-tokens/'
/** How long after its expiry a token (or its used record) is kept for precise answers. */
export const PRUNE_GRACE_MS = 7 * 86_400_000
/** Every token starts with this, so a leaked one is recognisable (secret scanners) and typos fail fast. */
const TOKEN_MARK = 'pct_est_'
const TOKEN_PATTERN = /^pct_est_[A-Za-z0-9_-]{43}$/
/** Hex characters of the hash shown as a token's id (`ca token list`, `ca token revoke`). */
const ID_LENGTH = 16

const tokenRecord = z.object({
  hash: z.string().regex(/^[0-9a-f]{64}$/),
  partner: z.string().min(1),
  profile: z.string().min(1),
  createdAt: z.number().int(),
  expiresAt: z.number().int(),
})
const usedRecord = tokenRecord.extend({ usedAt: z.number().int(), serial: z.string().min(1) })

/** What is stored for an unused token. */
export type TokenRecord = z.infer<typeof tokenRecord>
/** What a used token leaves behind. */
export type UsedTokenRecord = z.infer<typeof usedRecord>

/** A token taken out of the store by `claim`: give it back with `release` or finish it with `complete`. */
export interface TokenClaim {
  readonly record: TokenRecord
  readonly value: Buffer
}

/** Why a presented token cannot be redeemed (reason codes of src/shared/reasons.ts). */
export type TokenRefusal = { readonly ok: false; readonly reason: 'est_token_invalid' | 'est_token_expired' | 'est_token_used'; readonly detail: string }

/** One token as `ca token list` shows it. */
export interface ListedToken {
  readonly id: string
  readonly partner: string
  readonly profile: string
  readonly createdAt: number
  readonly expiresAt: number
  readonly status: 'active' | 'expired' | 'used'
  readonly usedAt?: number
  readonly serial?: string
}

function hashOf(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest()
}

function parse<T>(schema: z.ZodType<T>, value: Buffer): T | undefined {
  try {
    const parsed = schema.safeParse(JSON.parse(value.toString('utf8')))
    return parsed.success ? parsed.data : undefined
  } catch {
    return undefined
  }
}

function refuse(reason: TokenRefusal['reason'], detail: string): TokenRefusal {
  return { ok: false, reason, detail }
}

/** The enrollment tokens kept in a PKI storage's key-value store. */
export class EnrollmentTokens {
  constructor(private readonly kv: KeyValueStore) {}

  /** Makes a token for `partner`; returns it (the only time it exists in clear) and its id. */
  async create(opts: { readonly partner: string; readonly profile: string; readonly ttlMs: number; readonly now: number }): Promise<{ token: string; id: string; record: TokenRecord }> {
    const token = TOKEN_MARK + randomBytes(32).toString('base64url')
    const hash = hashOf(token).toString('hex')
    const record: TokenRecord = { hash, partner: opts.partner, profile: opts.profile, createdAt: opts.now, expiresAt: opts.now + opts.ttlMs }
    const written = await this.kv.put(TOKEN_PREFIX + hash, Buffer.from(JSON.stringify(record)), { ifVersion: 'absent' })
    // 256 random bits never collide; a conflict means the store is broken.
    if ('conflict' in written) throw new Error('enrollment token already exists in storage')
    return { token, id: hash.slice(0, ID_LENGTH), record }
  }

  /**
   * Takes the token out of the store if it is unused and not expired at
   * `now`; exactly one concurrent caller succeeds. Storage errors reject.
   */
  async claim(token: string, now: number): Promise<({ readonly ok: true } & TokenClaim) | TokenRefusal> {
    if (!TOKEN_PATTERN.test(token)) return refuse('est_token_invalid', 'not a Portcullis enrollment token')
    const hash = hashOf(token)
    const hex = hash.toString('hex')
    const stored = await this.kv.get(TOKEN_PREFIX + hex)
    if (!stored) {
      const used = await this.kv.get(USED_TOKEN_PREFIX + hex)
      const record = used && parse(usedRecord, used.value)
      if (record) return refuse('est_token_used', `used at ${new Date(record.usedAt).toISOString()} for serial ${record.serial}`)
      return refuse('est_token_invalid', 'unknown, revoked or being redeemed right now')
    }
    const record = parse(tokenRecord, stored.value)
    if (!record || !timingSafeEqual(Buffer.from(record.hash, 'hex'), hash)) return refuse('est_token_invalid', 'unreadable token record')
    if (now >= record.expiresAt) return refuse('est_token_expired', `expired at ${new Date(record.expiresAt).toISOString()}`)
    const taken = await this.kv.delete(TOKEN_PREFIX + hex, { ifVersion: stored.version })
    if ('conflict' in taken || !taken.deleted) return refuse('est_token_used', 'redeemed by a concurrent request')
    return { ok: true, record, value: stored.value }
  }

  /** Puts a claimed token back (its CSR was refused), unless one with its hash exists again. */
  async release(claim: TokenClaim): Promise<void> {
    await this.kv.put(TOKEN_PREFIX + claim.record.hash, claim.value, { ifVersion: 'absent' })
  }

  /** Records that a claimed token produced certificate `serial` at `now`. */
  async complete(claim: TokenClaim, serial: string, now: number): Promise<void> {
    const used: UsedTokenRecord = { ...claim.record, usedAt: now, serial }
    await this.kv.put(USED_TOKEN_PREFIX + claim.record.hash, Buffer.from(JSON.stringify(used)))
  }

  /** Every token, unused and used, oldest first. */
  async list(now: number): Promise<ListedToken[]> {
    const out: ListedToken[] = []
    for await (const { value } of this.entries(TOKEN_PREFIX)) {
      const r = parse(tokenRecord, value)
      if (r) out.push({ id: r.hash.slice(0, ID_LENGTH), partner: r.partner, profile: r.profile, createdAt: r.createdAt, expiresAt: r.expiresAt, status: now >= r.expiresAt ? 'expired' : 'active' })
    }
    for await (const { value } of this.entries(USED_TOKEN_PREFIX)) {
      const r = parse(usedRecord, value)
      if (r) out.push({ id: r.hash.slice(0, ID_LENGTH), partner: r.partner, profile: r.profile, createdAt: r.createdAt, expiresAt: r.expiresAt, status: 'used', usedAt: r.usedAt, serial: r.serial })
    }
    return out.sort((a, b) => a.createdAt - b.createdAt || a.id.localeCompare(b.id))
  }

  /**
   * Deletes the unused token whose id starts with `idPrefix` (at least 8 hex
   * characters). Returns its record, or why not: no match, or more than one.
   */
  async revoke(idPrefix: string): Promise<{ readonly revoked: TokenRecord } | { readonly error: 'not_found' | 'ambiguous' }> {
    const prefix = idPrefix.toLowerCase()
    const matches: { key: string; version: number; record: TokenRecord }[] = []
    for await (const entry of this.entries(TOKEN_PREFIX + prefix)) {
      const record = parse(tokenRecord, entry.value)
      if (record) matches.push({ ...entry, record })
    }
    if (matches.length === 0) return { error: 'not_found' }
    if (matches.length > 1) return { error: 'ambiguous' }
    const [match] = matches as [(typeof matches)[number]]
    const deleted = await this.kv.delete(match.key, { ifVersion: match.version })
    return 'conflict' in deleted ? { error: 'not_found' } : { revoked: match.record }
  }

  /** Deletes tokens and used records whose token expired more than `PRUNE_GRACE_MS` before `now`; returns how many. */
  async prune(now: number): Promise<number> {
    let count = 0
    for (const [prefix, schema] of [
      [TOKEN_PREFIX, tokenRecord],
      [USED_TOKEN_PREFIX, usedRecord],
    ] as const) {
      for await (const entry of this.entries(prefix)) {
        const record = parse<{ expiresAt: number }>(schema, entry.value)
        if (record && now >= record.expiresAt + PRUNE_GRACE_MS) {
          const deleted = await this.kv.delete(entry.key, { ifVersion: entry.version })
          if (!('conflict' in deleted) && deleted.deleted) count++
        }
      }
    }
    return count
  }

  /** Every key under `prefix` with its value and version, page by page (keys deleted meanwhile are skipped). */
  private async *entries(prefix: string): AsyncGenerator<{ key: string; version: number; value: Buffer }> {
    let after: string | undefined
    for (;;) {
      const page = await this.kv.list(prefix, { limit: MAX_LIST_LIMIT, ...(after === undefined ? {} : { after }) })
      for (const { key } of page) {
        const stored = await this.kv.get(key)
        if (stored) yield { key, version: stored.version, value: stored.value }
      }
      if (page.length < MAX_LIST_LIMIT) return
      after = page[page.length - 1]!.key
    }
  }
}
