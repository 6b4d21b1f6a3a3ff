/**
 * `portcullis ca revoke SERIAL --reason R`: marks a certificate revoked in
 * the inventory. Running gateways read new revocations from the inventory
 * on their own (every `pki.revocationSync`), refuse the certificate and close
 * its connections; the CRL and OCSP answers follow. No restart, no reload.
 *
 * Decisions:
 * - The CA passphrase is checked (the intermediate key is decrypted, then
 *   dropped) before anything changes: revoking is a CA act, and whoever can
 *   revoke can cut off every partner, so write access to the inventory
 *   alone is not treated as authority.
 * - Reasons are RFC 5280 names, exactly as spelt there. `certificateHold`
 *   is refused: revocation here is final (no suspension).
 * - Already revoked for the same reason: said so, exit 0 (idempotent, safe
 *   to retry). Already revoked for another reason: exit 1 naming the reason
 *   kept, because the operator's reason was not recorded.
 */
import { loadCa } from '../pki/ca-load.js'
import { parseRevocationReason, revocationReasonNames, type RevocationReason } from '../shared/revocation-reasons.js'
import { normalizeSerial } from '../storage/types.js'
import { caExit, CaCliFailure, CaUsageError, loadCaContext, parseCaArgs, runCaCommand, stringFlag, withInventory, type CaIo } from './ca-common.js'

/** Usage of `ca revoke`. */
export const caRevokeUsage = `usage: portcullis ca revoke SERIAL --config FILE --reason ${revocationReasonNames.join('|')}`

function parseReason(text: string): RevocationReason {
  const reason = parseRevocationReason(text)
  if (reason === undefined) {
    throw new CaUsageError(`--reason must be one of ${revocationReasonNames.join(', ')} (RFC 5280 names; revocation is final, so certificateHold is not offered)`)
  }
  return reason
}

function parseSerial(text: string): string {
  try {
    return normalizeSerial(text.replace(/:/g, ''))
  } catch {
    throw new CaUsageError(`SERIAL "${text}" must be the certificate serial in hex (as \`ca list\` prints it)`)
  }
}

/** Runs `ca revoke`; returns the exit code. */
export function runCaRevoke(args: readonly string[], io: CaIo): Promise<number> {
  return runCaCommand('revoke', caRevokeUsage, io, async () => {
    const { values, positionals } = parseCaArgs(args, { reason: { type: 'string' } }, true)
    if (positionals.length !== 1) throw new CaUsageError('give exactly one SERIAL')
    const serial = parseSerial(positionals[0]!)
    const reason = parseReason(stringFlag(values, 'reason', true))
    const ctx = loadCaContext(values, io)
    await loadCa({ dir: ctx.caDir, passphrase: ctx.passphrase() })

    const result = await withInventory(ctx, io, (storage) => storage.inventory.revoke(serial, reason, io.clock.now()))
    switch (result.outcome) {
      case 'not_found':
        throw new CaCliFailure(`no certificate with serial ${serial} in the inventory`)
      case 'already_revoked':
        io.out(`certificate ${serial} was already revoked (${reason}) at ${new Date(result.record.revokedAt ?? 0).toISOString()}; nothing changed`)
        return caExit.ok
      case 'reason_conflict':
        throw new CaCliFailure(
          `certificate ${serial} is already revoked with reason ${result.record.revocationReason ?? 'unknown'}; the reason is kept (revocation is final), ${reason} was not recorded`,
        )
      case 'revoked':
        io.out(`revoked ${serial} (${result.record.subject}) reason ${reason}`)
        io.out(
          `running gateways pick this up from the inventory within pki.revocationSync (${ctx.pki.revocationSync} ms): the certificate is refused and its connections are closed; CRL and OCSP follow. No restart needed.`,
        )
        return caExit.ok
    }
  })
}
