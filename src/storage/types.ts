/**
 * The storage interfaces of the control plane: a versioned key-value store, a
 * lock service and the inventory of issued certificates. Every backend
 * (memory, SQLite, Postgres, Redis) implements them and runs the same contract
 * suites in `test/contract/`, so the contracts below are what callers may rely
 * on, whichever backend `main.ts` picks. Like CertMagic's `Storage`, each
 * contract says what a missing key returns, what is atomic, what a lock does
 * not promise and what cancellation means.
 *
 * Nothing here is on the request path: the proxy reads in-memory snapshots
 * built from storage (for example the revoked-serial set), never storage itself.
 *
 * Small helpers that give the contracts one meaning in code (key and value
 * limits, serial normalisation, the lock wait loop) live here too, because a
 * backend may import only this file and `shared/`.
 */
import { parseRevocationReason, revocationReasonNames, type RevocationReason } from '../shared/revocation-reasons.js'
import type { Clock } from '../shared/clock.js'

// ─── Key-value store ─────────────────────────────────────────────────────────

/** Keys are UTF-8 strings of 1..512 bytes; longer keys are a caller bug. */
export const MAX_KEY_BYTES = 512
/** Values are at most 16 MiB: the store holds certificates, CRLs and state, not blobs. */
export const MAX_VALUE_BYTES = 16 * 1024 * 1024
/** The most entries one `list` page returns; also the default page size. */
export const MAX_LIST_LIMIT = 1000

/** A stored value with the version that a later compare-and-set names. */
export interface VersionedValue {
  readonly value: Buffer
  /**
   * A positive safe integer. Every successful write of a key returns a version
   * greater than every version that key had before, even across a delete and
   * re-create, so a stale `ifVersion` can never match again (no ABA).
   */
  readonly version: number
}

/** Preconditions of a write. */
export interface PutOptions {
  /**
   * `undefined`: write unconditionally. `'absent'`: write only if the key does
   * not exist (create). A number: write only if the key exists with exactly
   * that version (compare-and-set).
   */
  readonly ifVersion?: number | 'absent'
}

/** A write either happened, with its new version, or its precondition failed. */
export type PutResult = { readonly version: number } | { readonly conflict: true }

/** Preconditions of a delete: only a version (there is nothing to create). */
export interface DeleteOptions {
  readonly ifVersion?: number
}

/**
 * `deleted: false` without a precondition means the key was already missing
 * (deleting is idempotent); with `ifVersion` a missing or different key is a conflict.
 */
export type DeleteResult = { readonly deleted: boolean } | { readonly conflict: true }

/** One page of a listing: keys in order, each with its version (not its value, which may be 16 MiB). */
export interface ListedKey {
  readonly key: string
  readonly version: number
}

/** Paging of `list`. */
export interface ListOptions {
  /** At most this many entries, 1..1000; default 1000. */
  readonly limit?: number
  /** Only keys strictly after this one (the last key of the previous page). */
  readonly after?: string
}

/**
 * A durable map from string keys to byte values, with compare-and-set.
 *
 * - A missing key is `undefined` from `get`, never an error.
 * - Each operation is atomic on its own; there are no multi-key transactions.
 *   Read-modify-write is `get`, then `put` with `ifVersion`, retried on
 *   `conflict`: concurrent writers from any number of processes sharing the
 *   backend never lose an update that way.
 * - Order is the byte order of the keys' UTF-8 encoding (memcmp), the same on
 *   every backend; it is not JavaScript's UTF-16 string order.
 * - `list` pages are not a snapshot: keys written during paging may or may not appear.
 * - A write has happened, and is durable as far as the backend can make it,
 *   when its promise resolves: SQLite commits in WAL mode with
 *   `synchronous=FULL`; Postgres commits; Redis is as durable as the server's
 *   persistence settings (`appendfsync always` for the same promise); memory
 *   is not durable at all.
 * - Cancellation: an operation is one round trip and cannot be withdrawn once
 *   called. A caller that gives up must treat a write as possibly done.
 * - Invalid keys (empty, over 512 bytes, not well-formed Unicode) and values
 *   over 16 MiB are caller bugs and reject with a `StorageLimitError`.
 */
export interface KeyValueStore {
  get(key: string): Promise<VersionedValue | undefined>
  put(key: string, value: Buffer, options?: PutOptions): Promise<PutResult>
  delete(key: string, options?: DeleteOptions): Promise<DeleteResult>
  list(prefix: string, options?: ListOptions): Promise<readonly ListedKey[]>
}

// ─── Locker ──────────────────────────────────────────────────────────────────

/** How long a lock lives and how long to wait for it. */
export interface AcquireOptions {
  /** The lease: the lock expires this long after it is taken or extended (≥ 1 ms). */
  readonly ttlMs: number
  /** How long to keep trying while someone else holds it; 0 tries once. */
  readonly waitMs: number
  /**
   * Stops waiting: `acquire` rejects with the signal's reason and holds
   * nothing. An attempt already sent to the backend completes first; if it won
   * the lock, `acquire` resolves with it (the caller must release it).
   */
  readonly signal?: AbortSignal
}

/** A held lock. */
export interface Lock {
  readonly name: string
  /**
   * The fencing token: greater than the token of every earlier holder of this
   * name, takeovers included. Pass it to what the lock protects so that a
   * holder that lost the lock (paused past its TTL) can be refused there.
   */
  readonly token: number
  /**
   * Gives the lock up. Resolves `false` if it was no longer ours (expired and
   * perhaps taken over): the work done under it may have overlapped another
   * holder's. Releasing twice is harmless.
   */
  release(): Promise<boolean>
  /** Renews the lease for `ttlMs` from now if still ours; `false` if it was lost. */
  extend(ttlMs: number): Promise<boolean>
}

/**
 * Named advisory locks with leases, for work that one gateway instance should
 * do at a time (renewing a certificate, regenerating a CRL).
 *
 * What a lock does NOT promise:
 * - It is advisory: nothing stops code that does not ask for it.
 * - It is a lease, not ownership: a holder paused past `ttlMs` (GC, a stopped
 *   VM, a slow disk) loses it without being told, and another instance may
 *   take it over. Use the fencing token where the protected resource can check
 *   it, and `extend` for long work.
 * - It says nothing about the state it protects. As CertMagic's `Locker`
 *   advises, after acquiring, re-check the state (is the certificate still due
 *   for renewal? did another instance just do it?) before acting.
 *
 * Expiry is judged by one clock per backend: the server's for shared backends
 * (Redis, Postgres), the injected `Clock` for in-process ones (memory, SQLite).
 * A lock is never held by two callers at once while that clock holds true.
 * `acquire` resolves `undefined` when `waitMs` passed without getting the lock.
 */
export interface Locker {
  acquire(name: string, options: AcquireOptions): Promise<Lock | undefined>
}

// ─── Certificate inventory ───────────────────────────────────────────────────

/** Revocation reasons the inventory stores: the shared RFC 5280 table (src/shared/revocation-reasons.ts says what is left out and why). */
export { revocationReasonNames, type RevocationReason } from '../shared/revocation-reasons.js'

/** What the CA records when it issues a certificate. */
export interface NewCertificateRecord {
  /** Hex of the positive serial number; stored lower-case without leading zeros (see `normalizeSerial`). */
  readonly serial: string
  readonly subject: string
  /** As the CA wrote them, e.g. `DNS:api.example.com`, `URI:spiffe://example.org/w`. */
  readonly sans: readonly string[]
  /** The pki/ profile name (`server`, `client`, `partner`, ...); storage does not interpret it. */
  readonly profile: string
  /** The partner the certificate was issued to, for partner certificates. */
  readonly partner?: string
  /** ms since the epoch. */
  readonly notBefore: number
  /** ms since the epoch; greater than `notBefore`. */
  readonly notAfter: number
  /** Lower-case hex SHA-256 of the DER certificate, 64 characters. */
  readonly fingerprint256: string
  readonly pem: string
}

/** A certificate in the inventory. */
export interface CertificateRecord extends NewCertificateRecord {
  readonly status: 'valid' | 'revoked'
  /** ms since the epoch; set when `status` is `revoked`. */
  readonly revokedAt?: number
  readonly revocationReason?: RevocationReason
  /** ms since the epoch of the latest handshake that presented this certificate, as reported to `markSeen`; absent until then. */
  readonly lastSeenAt?: number
}

/** Filters of `list`; all given filters must match. */
export interface InventoryFilter {
  /** Only certificates with `now <= notAfter <= now + expiringWithinMs` (already expired ones are not "expiring"). */
  readonly expiringWithinMs?: number
  /** The "now" of `expiringWithinMs`; defaults to the backend's Clock. */
  readonly now?: number
  readonly partner?: string
  readonly status?: 'valid' | 'revoked'
  readonly profile?: string
  /** Only certificates not seen since this time (ms): `lastSeenAt` absent or earlier. */
  readonly notSeenSince?: number
  /** Page size, 1..1000; default 1000. */
  readonly limit?: number
  /** Only serials after this one, in the listing's order (by normalised serial). */
  readonly after?: string
}

/** One sighting for `markSeen`: the certificate `serial` was presented at `at` (ms). */
export interface Sighting {
  readonly serial: string
  readonly at: number
}

/** The outcome of `revoke`, as a value: an unknown serial is an answer, not a failure. */
export type RevokeResult =
  | { readonly outcome: 'revoked'; readonly record: CertificateRecord }
  /** It was already revoked for the same reason: nothing changed (the first `revokedAt` stays). */
  | { readonly outcome: 'already_revoked'; readonly record: CertificateRecord }
  /** It was already revoked for another reason: nothing changed; the record shows the reason kept. */
  | { readonly outcome: 'reason_conflict'; readonly record: CertificateRecord }
  | { readonly outcome: 'not_found' }

/**
 * Every certificate the built-in CA issued, for `ca list`, expiry monitoring,
 * CRLs, OCSP and the gateway's revoked set.
 *
 * - `add` rejects a serial already present with a `DuplicateSerialError` (with
 *   128-bit random serials that is a bug, never a retryable condition).
 * - Serials are compared after `normalizeSerial`, so `00AB` and `ab` are one certificate.
 * - Status only moves from `valid` to `revoked`, atomically, once.
 * - Times are ms since the epoch, given by the caller; backends never read the
 *   wall clock themselves except through an injected `Clock`.
 * - `list` is ordered by serial and paged with `after`; `revokedSince` is
 *   ordered by `revokedAt`, then serial, and returns every match (a CRL needs them all).
 * - `markSeen` only moves `lastSeenAt` forward (the latest of the stored value
 *   and every sighting of the serial in the call), for valid and revoked
 *   certificates alike; serials not in the inventory are ignored. The whole
 *   batch is checked before anything is written; each record's update is
 *   atomic, so concurrent callers (several gateways) never move it back.
 */
export interface CertificateInventory {
  add(record: NewCertificateRecord): Promise<CertificateRecord>
  get(serial: string): Promise<CertificateRecord | undefined>
  list(filter?: InventoryFilter): Promise<readonly CertificateRecord[]>
  revoke(serial: string, reason: RevocationReason, at: number): Promise<RevokeResult>
  /** Revoked certificates with `revokedAt >= sinceMs`. */
  revokedSince(sinceMs: number): Promise<readonly CertificateRecord[]>
  /** Records when certificates were last presented (see the contract above). */
  markSeen(entries: readonly Sighting[]): Promise<void>
}

/** A backend that offers all three, as opened by `main.ts`; `close` ends its connections. */
export interface Storage {
  readonly kv: KeyValueStore
  readonly locker: Locker
  readonly inventory?: CertificateInventory
  close(): Promise<void>
}

// ─── Errors (caller bugs, so exceptions; see DESIGN "Exceptions are for bugs") ─

/** A key, value or argument outside the documented limits. `code` is stable; match on it. */
export class StorageLimitError extends Error {
  constructor(
    readonly code: 'invalid_key' | 'value_too_large' | 'invalid_argument',
    message: string,
  ) {
    super(message)
    this.name = 'StorageLimitError'
  }
}

/** `add` of a serial the inventory already has. */
export class DuplicateSerialError extends Error {
  readonly code = 'duplicate_serial'
  constructor(readonly serial: string) {
    super(`certificate serial ${serial} is already in the inventory`)
    this.name = 'DuplicateSerialError'
  }
}

/**
 * The database was migrated by a newer Portcullis: opening it could corrupt
 * data that this code does not understand, so it is refused.
 */
export class SchemaTooNewError extends Error {
  readonly code = 'schema_too_new'
  constructor(
    readonly found: number,
    readonly known: number,
  ) {
    super(`the database is at schema version ${found}, newer than this Portcullis knows (${known}); refusing to open it`)
    this.name = 'SchemaTooNewError'
  }
}

// ─── Shared checks, so every backend draws the limits in the same place ──────

/** Throws unless `key` is a well-formed string of 1..512 UTF-8 bytes; returns its bytes. */
export function checkKey(key: string): Buffer {
  if (typeof key !== 'string' || key.length === 0) throw new StorageLimitError('invalid_key', 'key must be a non-empty string')
  const bytes = Buffer.from(key, 'utf8')
  // A lone surrogate would be stored as U+FFFD and read back as another key.
  if (bytes.toString('utf8') !== key) throw new StorageLimitError('invalid_key', 'key is not well-formed Unicode')
  if (bytes.length > MAX_KEY_BYTES) throw new StorageLimitError('invalid_key', `key is ${bytes.length} bytes; the limit is ${MAX_KEY_BYTES}`)
  return bytes
}

/** Like `checkKey` for prefixes and cursors, which may be empty. */
/**
 * Exclusive upper bound of the keys under `prefix`, for a byte-ordered range
 * scan (`key >= prefix AND key < prefixEnd(prefix)`): no UTF-8 byte is 0xFF.
 */
export function prefixEnd(prefix: Buffer): Buffer {
  return Buffer.concat([prefix, Buffer.from([0xff])])
}

export function checkPrefix(prefix: string): Buffer {
  return prefix === '' ? Buffer.alloc(0) : checkKey(prefix)
}

/** Throws unless `value` is a Buffer of at most 16 MiB. */
export function checkValue(value: Buffer): void {
  if (!Buffer.isBuffer(value)) throw new StorageLimitError('invalid_argument', 'value must be a Buffer')
  if (value.length > MAX_VALUE_BYTES) throw new StorageLimitError('value_too_large', `value is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES}`)
}

/** Throws unless `version` is a positive safe integer (or `'absent'` where allowed). */
export function checkVersion(version: number | 'absent' | undefined, allowAbsent: boolean): void {
  if (version === undefined || (allowAbsent && version === 'absent')) return
  if (!Number.isSafeInteger(version) || (version as number) < 1) throw new StorageLimitError('invalid_argument', 'ifVersion must be a positive integer')
}

/** The page size asked for, checked: 1..1000, default 1000. */
export function checkLimit(limit: number | undefined): number {
  if (limit === undefined) return MAX_LIST_LIMIT
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) throw new StorageLimitError('invalid_argument', `limit must be 1..${MAX_LIST_LIMIT}`)
  return limit
}

/** Byte order of UTF-8, the one order of keys on every backend. */
export function compareKeys(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'))
}

/** True if `key` starts with `prefix` (byte-wise, which for UTF-8 equals string-wise). */
export function hasPrefix(key: string, prefix: string): boolean {
  return key.startsWith(prefix)
}

/**
 * The one spelling of a serial: lower-case hex of the positive integer without
 * leading zeros, at most 20 octets (RFC 5280 §4.1.2.2). Input may be upper-case
 * and may carry the DER sign byte. Throws on anything else.
 */
export function normalizeSerial(serial: string): string {
  if (typeof serial !== 'string' || !/^[0-9a-fA-F]{1,42}$/.test(serial)) {
    throw new StorageLimitError('invalid_argument', 'serial must be 1..42 hex digits')
  }
  const hex = serial.toLowerCase().replace(/^0+(?=.)/, '')
  if (hex.length > 40) throw new StorageLimitError('invalid_argument', 'serial is longer than 20 octets')
  return hex
}

/**
 * Checks a new record and returns it normalised, as `valid`. The same checks on
 * every backend, so that no backend accepts what another would refuse.
 */
export function checkNewRecord(record: NewCertificateRecord): CertificateRecord {
  const serial = normalizeSerial(record.serial)
  const isTime = (t: unknown): t is number => Number.isSafeInteger(t) && (t as number) >= 0
  if (!isTime(record.notBefore) || !isTime(record.notAfter) || record.notAfter <= record.notBefore) {
    throw new StorageLimitError('invalid_argument', 'notBefore and notAfter must be ms since the epoch with notBefore < notAfter')
  }
  if (typeof record.fingerprint256 !== 'string' || !/^[0-9a-f]{64}$/.test(record.fingerprint256)) {
    throw new StorageLimitError('invalid_argument', 'fingerprint256 must be 64 lower-case hex digits')
  }
  if (typeof record.subject !== 'string' || typeof record.profile !== 'string' || record.profile === '' || typeof record.pem !== 'string') {
    throw new StorageLimitError('invalid_argument', 'subject, profile and pem must be strings; profile non-empty')
  }
  if (!Array.isArray(record.sans) || !record.sans.every((s) => typeof s === 'string')) {
    throw new StorageLimitError('invalid_argument', 'sans must be an array of strings')
  }
  if (record.partner !== undefined && (typeof record.partner !== 'string' || record.partner === '')) {
    throw new StorageLimitError('invalid_argument', 'partner must be a non-empty string when given')
  }
  const out: CertificateRecord = {
    serial,
    subject: record.subject,
    sans: [...record.sans],
    profile: record.profile,
    ...(record.partner !== undefined ? { partner: record.partner } : {}),
    notBefore: record.notBefore,
    notAfter: record.notAfter,
    fingerprint256: record.fingerprint256,
    pem: record.pem,
    status: 'valid',
  }
  return out
}

/** Throws unless `reason` is one of the shared revocation reasons and `at` a time. */
export function checkRevocation(reason: RevocationReason, at: number): void {
  if (parseRevocationReason(reason) === undefined) {
    throw new StorageLimitError('invalid_argument', `revocation reason must be one of ${revocationReasonNames.join(', ')}`)
  }
  if (!Number.isSafeInteger(at) || at < 0) throw new StorageLimitError('invalid_argument', 'revokedAt must be ms since the epoch')
}

/**
 * Checks a `markSeen` batch and folds it to the latest time per normalised
 * serial, so every backend refuses the same input and writes each row once.
 */
export function checkSightings(entries: readonly Sighting[]): Map<string, number> {
  if (!Array.isArray(entries)) throw new StorageLimitError('invalid_argument', 'entries must be an array')
  const latest = new Map<string, number>()
  for (const e of entries) {
    const serial = normalizeSerial(e?.serial)
    if (!Number.isSafeInteger(e.at) || e.at < 0) throw new StorageLimitError('invalid_argument', 'a sighting time must be ms since the epoch')
    latest.set(serial, Math.max(latest.get(serial) ?? 0, e.at))
  }
  return latest
}

/** The `now` of an inventory filter: the caller's, else the backend's clock. */
export function filterNow(filter: InventoryFilter, clock: Clock): number {
  return filter.now ?? clock.now()
}

/** Throws unless the lock options are usable; shared so every backend refuses the same. */
export function checkAcquire(name: string, options: AcquireOptions): void {
  checkKey(name)
  if (!Number.isSafeInteger(options.ttlMs) || options.ttlMs < 1) throw new StorageLimitError('invalid_argument', 'ttlMs must be a positive integer')
  if (!Number.isSafeInteger(options.waitMs) || options.waitMs < 0) throw new StorageLimitError('invalid_argument', 'waitMs must be a non-negative integer')
}

/**
 * The wait loop of `acquire`, one meaning of `waitMs` and `signal` for every
 * backend: try, then retry with jittered backoff (10 ms doubling to 200 ms)
 * until the lock is ours, `waitMs` has passed (resolves `undefined`), or the
 * signal aborts (rejects with its reason). Waiting is measured on the
 * monotonic timer, not a Clock: it is a timeout, not a decision about validity.
 */
export async function pollForLock<T>(tryOnce: () => Promise<T | undefined>, options: AcquireOptions): Promise<T | undefined> {
  const deadline = performance.now() + options.waitMs
  let delay = 10
  for (;;) {
    options.signal?.throwIfAborted()
    const got = await tryOnce()
    if (got !== undefined) return got
    const left = deadline - performance.now()
    if (left <= 0) return undefined
    const wait = Math.min(left, delay / 2 + Math.random() * (delay / 2))
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        clearTimeout(timer)
        reject(options.signal?.reason)
      }
      const timer = setTimeout(() => {
        options.signal?.removeEventListener('abort', onAbort)
        resolve()
      }, wait)
      options.signal?.addEventListener('abort', onAbort, { once: true })
    })
    delay = Math.min(delay * 2, 200)
  }
}
