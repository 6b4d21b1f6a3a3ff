/**
 * In-process storage: for tests, `portcullis start --dev` and single-instance
 * gateways that keep no control-plane state. Nothing survives the process and
 * nothing is shared with another process, so its locks only exclude callers
 * inside this one. It runs the same contract suites as the durable backends,
 * which makes it the reference for what the contracts mean.
 */
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
  checkAcquire,
  checkKey,
  checkLimit,
  checkNewRecord,
  checkPrefix,
  checkRevocation,
  checkSightings,
  checkValue,
  checkVersion,
  compareKeys,
  filterNow,
  hasPrefix,
  normalizeSerial,
  pollForLock,
} from './types.js'

/** A KeyValueStore in a Map. Values are copied in and out, so callers cannot change stored bytes. */
export class MemoryKeyValueStore implements KeyValueStore {
  private readonly entries = new Map<string, VersionedValue>()
  private lastVersion = 0

  async get(key: string): Promise<VersionedValue | undefined> {
    checkKey(key)
    const found = this.entries.get(key)
    return found && { value: Buffer.from(found.value), version: found.version }
  }

  async put(key: string, value: Buffer, options: PutOptions = {}): Promise<PutResult> {
    checkKey(key)
    checkValue(value)
    checkVersion(options.ifVersion, true)
    const current = this.entries.get(key)
    if (options.ifVersion === 'absent' && current) return { conflict: true }
    if (typeof options.ifVersion === 'number' && current?.version !== options.ifVersion) return { conflict: true }
    const version = ++this.lastVersion
    this.entries.set(key, { value: Buffer.from(value), version })
    return { version }
  }

  async delete(key: string, options: DeleteOptions = {}): Promise<DeleteResult> {
    checkKey(key)
    checkVersion(options.ifVersion, false)
    const current = this.entries.get(key)
    if (options.ifVersion !== undefined && current?.version !== options.ifVersion) return { conflict: true }
    return { deleted: this.entries.delete(key) }
  }

  async list(prefix: string, options: ListOptions = {}): Promise<readonly ListedKey[]> {
    checkPrefix(prefix)
    if (options.after !== undefined) checkPrefix(options.after)
    const limit = checkLimit(options.limit)
    const after = options.after
    return [...this.entries]
      .filter(([key]) => hasPrefix(key, prefix) && (after === undefined || compareKeys(key, after) > 0))
      .sort(([a], [b]) => compareKeys(a, b))
      .slice(0, limit)
      .map(([key, { version }]) => ({ key, version }))
  }
}

/** A Locker over a Map, with expiry judged by the injected Clock. */
export class MemoryLocker implements Locker {
  private readonly held = new Map<string, { token: number; expiresAt: number }>()
  private lastToken = 0

  constructor(private readonly clock: Clock = systemClock) {}

  async acquire(name: string, options: AcquireOptions): Promise<Lock | undefined> {
    checkAcquire(name, options)
    return pollForLock(async () => this.tryAcquire(name, options.ttlMs), options)
  }

  private tryAcquire(name: string, ttlMs: number): Lock | undefined {
    const now = this.clock.now()
    const current = this.held.get(name)
    if (current && current.expiresAt > now) return undefined
    const token = ++this.lastToken
    this.held.set(name, { token, expiresAt: now + ttlMs })
    const isOurs = (): boolean => {
      const entry = this.held.get(name)
      return entry !== undefined && entry.token === token && entry.expiresAt > this.clock.now()
    }
    return {
      name,
      token,
      release: async () => {
        const ours = isOurs()
        if (this.held.get(name)?.token === token) this.held.delete(name)
        return ours
      },
      extend: async (ms: number) => {
        checkAcquire(name, { ttlMs: ms, waitMs: 0 })
        if (!isOurs()) return false
        this.held.set(name, { token, expiresAt: this.clock.now() + ms })
        return true
      },
    }
  }
}

/** A CertificateInventory in a Map; `now` defaults to the injected Clock. */
export class MemoryCertificateInventory implements CertificateInventory {
  private readonly records = new Map<string, CertificateRecord>()

  constructor(private readonly clock: Clock = systemClock) {}

  async add(record: NewCertificateRecord): Promise<CertificateRecord> {
    const checked = checkNewRecord(record)
    if (this.records.has(checked.serial)) throw new DuplicateSerialError(checked.serial)
    this.records.set(checked.serial, checked)
    return copy(checked)
  }

  async get(serial: string): Promise<CertificateRecord | undefined> {
    const found = this.records.get(normalizeSerial(serial))
    return found && copy(found)
  }

  async list(filter: InventoryFilter = {}): Promise<readonly CertificateRecord[]> {
    const limit = checkLimit(filter.limit)
    const after = filter.after === undefined ? undefined : normalizeSerial(filter.after)
    const now = filterNow(filter, this.clock)
    const within = filter.expiringWithinMs
    return [...this.records.values()]
      .filter(
        (r) =>
          (after === undefined || r.serial > after) &&
          (within === undefined || (r.notAfter >= now && r.notAfter <= now + within)) &&
          (filter.partner === undefined || r.partner === filter.partner) &&
          (filter.status === undefined || r.status === filter.status) &&
          (filter.profile === undefined || r.profile === filter.profile) &&
          (filter.notSeenSince === undefined || r.lastSeenAt === undefined || r.lastSeenAt < filter.notSeenSince),
      )
      .sort((a, b) => (a.serial < b.serial ? -1 : 1))
      .slice(0, limit)
      .map(copy)
  }

  async revoke(serial: string, reason: RevocationReason, at: number): Promise<RevokeResult> {
    checkRevocation(reason, at)
    const key = normalizeSerial(serial)
    const found = this.records.get(key)
    if (!found) return { outcome: 'not_found' }
    if (found.status === 'revoked') {
      return { outcome: found.revocationReason === reason ? 'already_revoked' : 'reason_conflict', record: copy(found) }
    }
    const revoked: CertificateRecord = { ...found, status: 'revoked', revokedAt: at, revocationReason: reason }
    this.records.set(key, revoked)
    return { outcome: 'revoked', record: copy(revoked) }
  }

  async revokedSince(sinceMs: number): Promise<readonly CertificateRecord[]> {
    return [...this.records.values()]
      .filter((r) => r.status === 'revoked' && (r.revokedAt ?? 0) >= sinceMs)
      .sort((a, b) => (a.revokedAt ?? 0) - (b.revokedAt ?? 0) || (a.serial < b.serial ? -1 : 1))
      .map(copy)
  }

  async markSeen(entries: readonly Sighting[]): Promise<void> {
    for (const [serial, at] of checkSightings(entries)) {
      const found = this.records.get(serial)
      if (found && (found.lastSeenAt === undefined || at > found.lastSeenAt)) this.records.set(serial, { ...found, lastSeenAt: at })
    }
  }
}

function copy(record: CertificateRecord): CertificateRecord {
  return { ...record, sans: [...record.sans] }
}

/** All three in memory, sharing one Clock. */
export function openMemoryStorage(options: { readonly clock?: Clock } = {}): Storage & { readonly inventory: CertificateInventory } {
  const clock = options.clock ?? systemClock
  return {
    kv: new MemoryKeyValueStore(),
    locker: new MemoryLocker(clock),
    inventory: new MemoryCertificateInventory(clock),
    close: async () => undefined,
  }
}
