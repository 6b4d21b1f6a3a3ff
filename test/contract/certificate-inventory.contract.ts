/**
 * The CertificateInventory contract (src/storage/types.ts). Times are pinned:
 * every "now" is passed in, so the expiry filters are exact to the millisecond.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { type CertificateInventory, DuplicateSerialError, type NewCertificateRecord } from '../../src/storage/types.js'
import { type MakeStore, rejectsWithCode, withStore } from './key-value-store.contract.js'

const opts = { timeout: 30_000 }
const DAY = 86_400_000
/** The pinned "now" of every test: 2026-03-01T00:00:00Z. */
const NOW = Date.UTC(2026, 2, 1)

function record(serial: string, over: Partial<NewCertificateRecord> = {}): NewCertificateRecord {
  return {
    serial,
    subject: `CN=${serial}`,
    sans: [`DNS:${serial}.example.com`, `URI:spiffe://example.org/${serial}`],
    profile: 'server',
    notBefore: NOW - 10 * DAY,
    notAfter: NOW + 90 * DAY,
    fingerprint256: serial.padStart(64, '0').slice(-64),
    pem: `-----BEGIN CERTIFICATE-----\n${serial}\n-----END CERTIFICATE-----\n`,
    ...over,
  }
}

export function runCertificateInventoryContract(name: string, make: MakeStore<CertificateInventory>): void {
  describe(`CertificateInventory contract: ${name}`, () => {
    it('adds a record as valid and reads every field back', opts, () =>
      withStore(make, async (inv) => {
        const input = record('0a1b', { partner: 'acme', profile: 'partner' })
        const added = await inv.add(input)
        const expected = { ...input, serial: 'a1b', status: 'valid' }
        assert.deepEqual(added, expected)
        assert.deepEqual(await inv.get('a1b'), expected)
        assert.deepEqual(await inv.get('0A1B'), expected, 'serials are looked up normalised')
        assert.equal(await inv.get('ffff'), undefined)
        const noPartner = await inv.get((await inv.add(record('b2'))).serial)
        assert.ok(noPartner)
        assert.equal('partner' in noPartner, false, 'an absent partner stays absent')
      }),
    )

    it('refuses a duplicate serial, even spelled differently', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('abcd'))
        await assert.rejects(inv.add(record('00ABCD', { fingerprint256: 'e'.repeat(64) })), (err: unknown) => err instanceof DuplicateSerialError && err.serial === 'abcd')
        assert.equal((await inv.list()).length, 1)
      }),
    )

    it('refuses malformed records', opts, () =>
      withStore(make, async (inv) => {
        await rejectsWithCode(inv.add(record('xyz')), 'invalid_argument')
        await rejectsWithCode(inv.add(record('a'.repeat(41))), 'invalid_argument')
        await rejectsWithCode(inv.add(record('c1', { notAfter: NOW - 10 * DAY })), 'invalid_argument')
        await rejectsWithCode(inv.add(record('c2', { fingerprint256: 'A'.repeat(64) })), 'invalid_argument')
        await rejectsWithCode(inv.add(record('c3', { profile: '' })), 'invalid_argument')
        assert.deepEqual(await inv.list(), [])
      }),
    )

    it('lists certificates expiring within N days of a pinned now, not the expired ones', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('e1', { notAfter: NOW - 1 })) // expired a millisecond ago
        await inv.add(record('e2', { notAfter: NOW })) // expires now: still counts
        await inv.add(record('e3', { notAfter: NOW + 7 * DAY })) // exactly at the edge
        await inv.add(record('e4', { notAfter: NOW + 7 * DAY + 1 }))
        await inv.add(record('e5', { notAfter: NOW + 30 * DAY }))
        const within7 = await inv.list({ expiringWithinMs: 7 * DAY, now: NOW })
        assert.deepEqual(
          within7.map((r) => r.serial),
          ['e2', 'e3'],
        )
        const within30 = await inv.list({ expiringWithinMs: 30 * DAY, now: NOW })
        assert.deepEqual(
          within30.map((r) => r.serial),
          ['e2', 'e3', 'e4', 'e5'],
        )
        const later = await inv.list({ expiringWithinMs: 7 * DAY, now: NOW + 7 * DAY })
        assert.deepEqual(
          later.map((r) => r.serial),
          ['e3', 'e4'],
        )
      }),
    )

    it('filters by partner, profile and status, combined', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('f1', { partner: 'acme', profile: 'partner' }))
        await inv.add(record('f2', { partner: 'acme', profile: 'partner' }))
        await inv.add(record('f3', { partner: 'globex', profile: 'partner' }))
        await inv.add(record('f4', { profile: 'client' }))
        await inv.revoke('f2', 'keyCompromise', NOW)
        const serials = async (f: Parameters<CertificateInventory['list']>[0]): Promise<string[]> => (await inv.list(f)).map((r) => r.serial)
        assert.deepEqual(await serials({ partner: 'acme' }), ['f1', 'f2'])
        assert.deepEqual(await serials({ partner: 'acme', status: 'valid' }), ['f1'])
        assert.deepEqual(await serials({ status: 'revoked' }), ['f2'])
        assert.deepEqual(await serials({ profile: 'client' }), ['f4'])
        assert.deepEqual(await serials({ partner: 'nobody' }), [])
        assert.deepEqual(await serials({ partner: 'acme', expiringWithinMs: 100 * DAY, now: NOW, status: 'revoked' }), ['f2'])
      }),
    )

    it('pages the list by serial with limit and after', opts, () =>
      withStore(make, async (inv) => {
        const serials = Array.from({ length: 12 }, (_, i) => (0x100 + i * 7).toString(16))
        for (const s of [...serials].reverse()) await inv.add(record(s))
        const seen: string[] = []
        let after: string | undefined
        for (let i = 0; i < 10; i++) {
          const page = await inv.list({ limit: 5, ...(after !== undefined ? { after } : {}) })
          seen.push(...page.map((r) => r.serial))
          if (page.length < 5) break
          after = page.at(-1)?.serial
        }
        assert.deepEqual(seen, [...serials].sort())
        await rejectsWithCode(inv.list({ limit: 0 }), 'invalid_argument')
      }),
    )

    it('revokes once; the same reason again is idempotent, another reason is a conflict', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('d1'))
        const first = await inv.revoke('D1', 'keyCompromise', NOW)
        assert.equal(first.outcome, 'revoked')
        assert.ok(first.outcome === 'revoked')
        assert.equal(first.record.status, 'revoked')
        assert.equal(first.record.revokedAt, NOW)
        assert.equal(first.record.revocationReason, 'keyCompromise')
        const again = await inv.revoke('d1', 'keyCompromise', NOW + DAY)
        assert.equal(again.outcome, 'already_revoked')
        assert.ok(again.outcome === 'already_revoked')
        assert.equal(again.record.revokedAt, NOW, 'the first revocation time stays')
        const other = await inv.revoke('d1', 'superseded', NOW + DAY)
        assert.equal(other.outcome, 'reason_conflict')
        assert.ok(other.outcome === 'reason_conflict')
        assert.equal(other.record.revocationReason, 'keyCompromise')
        const stored = await inv.get('d1')
        assert.equal(stored?.revokedAt, NOW)
        assert.equal(stored?.revocationReason, 'keyCompromise')
      }),
    )

    it('answers not_found for an unknown serial instead of throwing', opts, () =>
      withStore(make, async (inv) => {
        assert.deepEqual(await inv.revoke('dead', 'unspecified', NOW), { outcome: 'not_found' })
        await rejectsWithCode(inv.revoke('dead', 'certificateHold' as never, NOW), 'invalid_argument')
      }),
    )

    it('revokes exactly once when 10 callers race', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('cace'))
        const results = await Promise.all(Array.from({ length: 10 }, (_, i) => inv.revoke('cace', 'keyCompromise', NOW + i)))
        assert.equal(results.filter((r) => r.outcome === 'revoked').length, 1)
        assert.equal(results.filter((r) => r.outcome === 'already_revoked').length, 9)
      }),
    )

    it('returns revocations since a time, oldest first, for CRLs', opts, () =>
      withStore(make, async (inv) => {
        for (const s of ['a1', 'a2', 'a3', 'a4', 'a5']) await inv.add(record(s))
        await inv.revoke('a3', 'superseded', NOW + 2 * DAY)
        await inv.revoke('a1', 'keyCompromise', NOW + 1 * DAY)
        await inv.revoke('a4', 'cessationOfOperation', NOW + 2 * DAY)
        assert.deepEqual(
          (await inv.revokedSince(0)).map((r) => [r.serial, r.revocationReason]),
          [
            ['a1', 'keyCompromise'],
            ['a3', 'superseded'],
            ['a4', 'cessationOfOperation'],
          ],
        )
        assert.deepEqual(
          (await inv.revokedSince(NOW + 2 * DAY)).map((r) => r.serial),
          ['a3', 'a4'],
        )
        assert.deepEqual(await inv.revokedSince(NOW + 3 * DAY), [])
      }),
    )

    it('records the latest sighting per certificate and never moves it back', opts, () =>
      withStore(make, async (inv) => {
        for (const s of ['b1', 'b2', 'b3']) await inv.add(record(s))
        await inv.revoke('b3', 'superseded', NOW)
        const seen = async (s: string): Promise<number | undefined> => (await inv.get(s))?.lastSeenAt
        await inv.markSeen([{ serial: 'b1', at: NOW }])
        assert.equal(await seen('b1'), NOW)
        const unseen = await inv.get('b2')
        assert.equal(unseen && 'lastSeenAt' in unseen, false, 'never seen: no lastSeenAt')
        await inv.markSeen([{ serial: 'B1', at: NOW - DAY }])
        assert.equal(await seen('b1'), NOW, 'an older sighting does not move it back')
        await inv.markSeen([
          { serial: 'b1', at: NOW + 5 },
          { serial: '00B1', at: NOW + 9 },
          { serial: 'b1', at: NOW + 7 },
          { serial: 'b3', at: NOW + 1 },
          { serial: 'ffff', at: NOW }, // not in the inventory: ignored
        ])
        assert.equal(await seen('b1'), NOW + 9, 'the latest of a batch, whatever the spelling and order')
        assert.equal(await seen('b3'), NOW + 1, 'a revoked certificate is still seen')
        assert.equal((await inv.list({ status: 'revoked' }))[0]?.lastSeenAt, NOW + 1, 'list returns it too')
        await inv.markSeen([])
        assert.equal(await inv.get('ffff'), undefined)
      }),
    )

    it('checks the whole sighting batch before writing any of it', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('c5'))
        await rejectsWithCode(inv.markSeen([{ serial: 'c5', at: NOW }, { serial: 'xyz', at: NOW }]), 'invalid_argument')
        await rejectsWithCode(inv.markSeen([{ serial: 'c5', at: NOW }, { serial: 'c5', at: -1 }]), 'invalid_argument')
        await rejectsWithCode(inv.markSeen([{ serial: 'c5', at: 1.5 }]), 'invalid_argument')
        assert.equal((await inv.get('c5'))?.lastSeenAt, undefined)
      }),
    )

    it('keeps the latest time when 10 callers report sightings at once', opts, () =>
      withStore(make, async (inv) => {
        await inv.add(record('cafe'))
        const times = Array.from({ length: 10 }, (_, i) => NOW + ((i * 7) % 10))
        await Promise.all(times.map((at) => inv.markSeen([{ serial: 'cafe', at }])))
        assert.equal((await inv.get('cafe'))?.lastSeenAt, NOW + 9)
      }),
    )

    it('lists the certificates not seen since a time, never-seen ones included', opts, () =>
      withStore(make, async (inv) => {
        for (const s of ['d1', 'd2', 'd3']) await inv.add(record(s, { partner: 'acme' }))
        await inv.markSeen([
          { serial: 'd1', at: NOW - 10 * DAY },
          { serial: 'd2', at: NOW - DAY },
        ])
        const serials = async (f: Parameters<CertificateInventory['list']>[0]): Promise<string[]> => (await inv.list(f)).map((r) => r.serial)
        assert.deepEqual(await serials({ notSeenSince: NOW - 7 * DAY }), ['d1', 'd3'])
        assert.deepEqual(await serials({ notSeenSince: NOW - DAY }), ['d1', 'd3'], 'seen exactly at the bound counts as seen')
        assert.deepEqual(await serials({ notSeenSince: NOW, partner: 'acme' }), ['d1', 'd2', 'd3'])
      }),
    )
  })
}
