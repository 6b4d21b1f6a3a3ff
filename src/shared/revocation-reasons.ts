/**
 * RFC 5280 §5.3.1 CRLReason names and codes: the one table shared by the
 * inventory (which reasons may be stored), the CRL builder, the OCSP
 * responder (RevokedInfo.revocationReason carries the same ENUMERATED) and
 * `ca revoke --reason`, so a reason cannot be spelled differently in any of
 * them.
 *
 * Left out on purpose:
 * - `certificateHold` (6): revocation here is final — the CA/Browser Forum
 *   Baseline Requirements forbid suspension — so nothing is ever on hold.
 * - `removeFromCRL` (8): exists only for delta CRLs, which Portcullis does not
 *   produce.
 * Code 7 is unassigned in RFC 5280.
 */
export const revocationReasons = {
  unspecified: 0,
  keyCompromise: 1,
  cACompromise: 2,
  affiliationChanged: 3,
  superseded: 4,
  cessationOfOperation: 5,
  privilegeWithdrawn: 9,
  aACompromise: 10,
} as const satisfies Record<string, number>

/** A reason Portcullis records, puts on CRLs and answers in OCSP. */
export type RevocationReason = keyof typeof revocationReasons

/**
 * Every RFC 5280 §5.3.1 code, for reading what another CA says (its CRLs,
 * its OCSP answers): an external CA may put certificates on hold, and its
 * reasons must be named, not refused. Portcullis itself uses only
 * `revocationReasons` above.
 */
const externalReasonNames: Readonly<Record<number, string>> = {
  ...Object.fromEntries(Object.entries(revocationReasons).map(([name, code]) => [code, name])),
  6: 'certificateHold',
  8: 'removeFromCRL',
}

/** The RFC 5280 name of a CRLReason code from any CA; undefined for a code RFC 5280 does not assign. */
export function crlReasonName(code: number): string | undefined {
  return Object.hasOwn(externalReasonNames, code) ? externalReasonNames[code] : undefined
}

/** The names, in code order, for usage texts and validation messages. */
export const revocationReasonNames = Object.keys(revocationReasons) as readonly RevocationReason[]

/**
 * Strict lookup for names that come from outside the type system (CLI flags,
 * storage rows). Undefined for anything not in the table — certificateHold,
 * removeFromCRL, other casing, prototype keys — so callers refuse, not guess.
 */
export function parseRevocationReason(name: string): RevocationReason | undefined {
  return Object.hasOwn(revocationReasons, name) ? (name as RevocationReason) : undefined
}
