/**
 * The CA's operator-facing failures: one table of stable snake_case codes and
 * one error class carrying a code from it (DESIGN.md: "one table and a
 * derived type", not one class per code).
 *
 * These are exceptions, not Denial values, because they come from operator
 * actions (init, load, issue, export), never from the request path an attacker
 * can flood. A CSR refused by policy is NOT an error: `signCsr` returns it as
 * a value with a rule from `csrRefusalRules` (policy.ts).
 *
 * Callers (CLI, admin API) switch on `code`, never on message text. Messages
 * and `detail` never contain key bytes or passphrases.
 */

/** Every code a `CaError` can carry, with the sentence the CLI prints for it. */
export const caErrorCodes = {
  ca_exists: 'A CA already exists in this folder; refusing to overwrite it',
  ca_not_found: 'No CA in this folder (run `portcullis ca init`)',
  ca_corrupt: 'CA files are unreadable or do not belong together',
  ca_config_invalid: 'CA settings are invalid',
  ca_expired: 'The issuing CA certificate is not valid at this time',
  ca_passphrase_invalid: 'The passphrase does not decrypt the CA key',
  ca_passphrase_too_short: 'The CA passphrase is too short',
  ca_key_not_encrypted: 'A CA key file is not encrypted; refusing to use it',
  ca_root_key_absent: 'The root key is not in the CA folder (already exported?)',
  ca_export_target_exists: 'The export target already exists; refusing to overwrite it',
  issue_invalid: 'The certificate request is invalid for this profile',
} as const satisfies Record<string, string>

/** A stable code from `caErrorCodes`. */
export type CaErrorCode = keyof typeof caErrorCodes

/**
 * A CA operation failed for a reason the operator can act on. `detail` names
 * the file or field involved (never secret material).
 */
export class CaError extends Error {
  override readonly name = 'CaError'
  readonly code: CaErrorCode
  readonly detail: string | undefined

  constructor(code: CaErrorCode, detail?: string, options?: { readonly cause?: unknown }) {
    super(detail ? `${caErrorCodes[code]}: ${detail}` : caErrorCodes[code], options)
    this.code = code
    this.detail = detail
  }
}

/** True when `err` is a CaError with `code`; for callers and tests that branch on codes. */
export function isCaError(err: unknown, code?: CaErrorCode): err is CaError {
  return err instanceof CaError && (code === undefined || err.code === code)
}
