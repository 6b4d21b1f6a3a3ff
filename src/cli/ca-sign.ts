/**
 * `portcullis ca sign CSR_FILE --partner NAME`: signs a partner's PKCS#10
 * request under `pki.partners.NAME`, writes the certificate followed by the
 * intermediate to `--out`, and records it in the inventory.
 *
 * Decisions:
 * - A policy refusal is an answer, not a crash: it prints
 *   `refused: <rule>: <detail>` (the stable rule code from policy.ts) and
 *   exits 3, distinct from usage errors (2) and failures (1), so onboarding
 *   scripts can tell "the partner asked for too much" from "it broke".
 * - The CSR file is read with a size cap before parsing (a CSR is a few KiB).
 * - `--out` must not exist; the certificate is recorded in the inventory
 *   before it is written (see ca-issue.ts for why).
 */
import { toInventoryRecord } from '../control/inventory-record.js'
import { access, open } from 'node:fs/promises'
import { resolve } from 'node:path'
import { loadCa } from '../pki/ca-load.js'
import { maxCsrBytes, signCsr } from '../pki/ca-sign-csr.js'
import { partnerPolicyOf } from '../pki/policy.js'
import { isProfileName } from '../pki/profiles.js'
import { writeFileAtomic } from '../shared/private-files.js'
import {
  caExit,
  CaCliFailure,
  CaUsageError,
  durationFlag,
  loadCaContext,
  parseCaArgs,
  runCaCommand,
  stringFlag,
  withInventory,
  type CaIo,
} from './ca-common.js'

/** Usage of `ca sign`. */
export const caSignUsage = `usage: portcullis ca sign CSR_FILE --config FILE --partner NAME [--profile partner|client|server|spiffe] [--validity 30d] --out FILE`

async function readCsr(path: string): Promise<string> {
  let handle
  try {
    handle = await open(path, 'r')
  } catch (err) {
    throw new CaCliFailure(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  try {
    const info = await handle.stat()
    if (!info.isFile()) throw new CaCliFailure(`${path} is not a regular file`)
    const buf = Buffer.alloc(maxCsrBytes + 1)
    const { bytesRead } = await handle.read(buf, 0, buf.length, 0)
    if (bytesRead > maxCsrBytes) throw new CaCliFailure(`${path} is larger than ${maxCsrBytes} bytes; not a CSR`)
    return buf.subarray(0, bytesRead).toString('utf8')
  } finally {
    await handle.close()
  }
}

/** Runs `ca sign`; returns the exit code. */
export function runCaSign(args: readonly string[], io: CaIo): Promise<number> {
  return runCaCommand('sign', caSignUsage, io, async () => {
    const { values, positionals } = parseCaArgs(
      args,
      { partner: { type: 'string' }, profile: { type: 'string' }, validity: { type: 'string' }, out: { type: 'string' } },
      true,
    )
    if (positionals.length !== 1) throw new CaUsageError('give exactly one CSR_FILE')
    const csrPath = resolve(positionals[0]!)
    const partnerName = stringFlag(values, 'partner', true)
    const profile = stringFlag(values, 'profile') ?? 'partner'
    if (!isProfileName(profile)) throw new CaUsageError('--profile must be one of partner, client, server, spiffe')
    const validityMs = durationFlag(values, 'validity')
    const out = resolve(stringFlag(values, 'out', true))

    const ctx = loadCaContext(values, io)
    const partner = ctx.pki.partners[partnerName]
    if (!partner) {
      throw new CaCliFailure(`unknown partner "${partnerName}"; known partners: ${Object.keys(ctx.pki.partners).join(', ') || '(none configured in pki.partners)'}`)
    }
    const outExists = await access(out).then(
      () => true,
      () => false,
    )
    if (outExists) throw new CaCliFailure(`${out} already exists; refusing to overwrite it`)
    const csrPem = await readCsr(csrPath)

    const ca = await loadCa({ dir: ctx.caDir, passphrase: ctx.passphrase() })
    const result = await signCsr(ca, csrPem, {
      profile,
      partnerPolicy: partnerPolicyOf(partnerName, partner),
      clock: io.clock,
      ...(validityMs === undefined ? {} : { validityMs }),
    })
    if (!result.ok) {
      io.err(`refused: ${result.rule}: ${result.detail}`)
      return caExit.refused
    }
    await withInventory(ctx, io, (storage) => storage.inventory.add(toInventoryRecord(result.record)))
    await writeFileAtomic(out, result.certPem + ca.intermediate.toString('pem') + '\n', 0o644, { overwrite: false })

    const r = result.record
    io.out(`signed ${r.profile} certificate serial ${r.serial} for partner ${partnerName}`)
    io.out(`  subject:   ${r.subject}`)
    if (r.sans.length > 0) io.out(`  SANs:      ${toInventoryRecord(r).sans.join(', ')}`)
    io.out(`  not after: ${new Date(r.notAfter).toISOString()}`)
    io.out(`  written:   ${out} (certificate, then intermediate; the partner trusts ${ca.dir}/root.crt)`)
    io.out(`  recorded in the inventory`)
    return caExit.ok
  })
}
