/**
 * `portcullis ca list`: the inventory of issued certificates, filtered.
 *
 * Decisions:
 * - Reads only the inventory; it never decrypts a CA key, so an auditor can
 *   list certificates on a host where the config's passphrase secret is set
 *   without the command ever using it.
 * - A table for people by default; `--json` prints one JSON object per line
 *   (every field except the PEM, which `jq` users rarely want in a listing
 *   and which would make lines tens of KiB long).
 * - `--expiring-within` counts from now and leaves out already expired
 *   certificates (the inventory's own definition).
 * - LAST SEEN is the latest handshake that presented the certificate, as
 *   running gateways report it every few seconds (`never` until then).
 *   `--unused-for 7d` lists those not seen for that long, never-seen ones
 *   included: during a rotation, the old certificate shows up there once
 *   the partner has moved to the new one.
 */
import type { CertificateRecord, InventoryFilter } from '../storage/types.js'
import { MAX_LIST_LIMIT } from '../storage/types.js'
import { caExit, CaUsageError, durationFlag, loadCaContext, parseCaArgs, runCaCommand, stringFlag, withInventory, type CaIo } from './ca-common.js'

/** Usage of `ca list`. */
export const caListUsage = `usage: portcullis ca list --config FILE [--expiring-within 30d] [--unused-for 7d] [--partner NAME] [--status valid|revoked] [--profile P] [--json]`

function statusOf(r: CertificateRecord, now: number): string {
  if (r.status === 'revoked') return `revoked${r.revocationReason ? ` (${r.revocationReason})` : ''}`
  return r.notAfter < now ? 'expired' : 'valid'
}

/** One record as a JSON line: no PEM. */
function jsonLine(r: CertificateRecord): string {
  const { pem: _pem, ...rest } = r
  return JSON.stringify({
    ...rest,
    notBefore: new Date(r.notBefore).toISOString(),
    notAfter: new Date(r.notAfter).toISOString(),
    ...(r.lastSeenAt !== undefined ? { lastSeenAt: new Date(r.lastSeenAt).toISOString() } : {}),
  })
}

function table(rows: readonly (readonly string[])[]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
}

/** Runs `ca list`; returns the exit code. */
export function runCaList(args: readonly string[], io: CaIo): Promise<number> {
  return runCaCommand('list', caListUsage, io, async () => {
    const { values } = parseCaArgs(
      args,
      {
        'expiring-within': { type: 'string' },
        'unused-for': { type: 'string' },
        partner: { type: 'string' },
        status: { type: 'string' },
        profile: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    )
    const expiringWithinMs = durationFlag(values, 'expiring-within')
    const unusedForMs = durationFlag(values, 'unused-for')
    const partner = stringFlag(values, 'partner')
    const status = stringFlag(values, 'status')
    if (status !== undefined && status !== 'valid' && status !== 'revoked') throw new CaUsageError('--status must be valid or revoked')
    const profile = stringFlag(values, 'profile')
    const ctx = loadCaContext(values, io)
    const now = io.clock.now()
    const filter: InventoryFilter = {
      now,
      ...(expiringWithinMs === undefined ? {} : { expiringWithinMs }),
      ...(unusedForMs === undefined ? {} : { notSeenSince: now - unusedForMs }),
      ...(partner === undefined ? {} : { partner }),
      ...(status === undefined ? {} : { status }),
      ...(profile === undefined ? {} : { profile }),
    }
    const records = await withInventory(ctx, io, async (storage) => {
      const all: CertificateRecord[] = []
      let after: string | undefined
      for (;;) {
        const page = await storage.inventory.list({ ...filter, limit: MAX_LIST_LIMIT, ...(after === undefined ? {} : { after }) })
        all.push(...page)
        if (page.length < MAX_LIST_LIMIT) return all
        after = page[page.length - 1]!.serial
      }
    })
    if (values.json === true) {
      for (const r of records) io.out(jsonLine(r))
      return caExit.ok
    }
    if (records.length === 0) {
      io.out('no certificates match')
      return caExit.ok
    }
    const rows = [
      ['SERIAL', 'SUBJECT', 'PROFILE', 'PARTNER', 'NOT AFTER', 'LAST SEEN', 'STATUS'],
      ...records.map((r) => [
        r.serial,
        r.subject,
        r.profile,
        r.partner ?? '-',
        new Date(r.notAfter).toISOString(),
        r.lastSeenAt === undefined ? 'never' : new Date(r.lastSeenAt).toISOString(),
        statusOf(r, now),
      ]),
    ]
    for (const line of table(rows)) io.out(line)
    return caExit.ok
  })
}
