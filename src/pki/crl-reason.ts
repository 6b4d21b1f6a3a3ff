/**
 * RFC 5280 §5.3.1 CRLReason names and codes, shared by the CRL builder, the
 * OCSP responder (RevokedInfo.revocationReason carries the same ENUMERATED)
 * and the `ca revoke --reason` CLI parser. One table so a reason can never be
 * spelled differently in the CRL and in OCSP.
 */

/**
 * Reason name → code. Code 7 is unassigned in RFC 5280. `removeFromCRL` (8)
 * exists only for delta CRLs, which Portcullis does not produce, so it is kept
 * out of this table and cannot be stored as a revocation reason.
 */
export const revocationReasons = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  certificateHold: 6,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const satisfies Record<string, number>

/** An RFC 5280 CRLReason name that may appear on a full CRL or in OCSP. */
export type RevocationReason = keyof typeof revocationReasons

/**
 * Strict lookup for names that come from outside the type system (CLI flags,
 * storage rows). Returns undefined for anything not in the table, including
 * `removeFromCRL` and differently cased spellings, so callers must refuse
 * rather than guess.
 */
export function parseRevocationReason(name: string): RevocationReason | undefined {
  return Object.hasOwn(revocationReasons, name) ? (name as RevocationReason) : undefined
}
