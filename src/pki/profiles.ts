/**
 * Certificate profiles: what each kind of leaf the CA issues may be used for
 * and how long it may live. One table, read by issuing and CSR signing alike,
 * so a profile cannot mean two things.
 *
 * Every leaf gets basicConstraints CA:FALSE (critical), keyUsage
 * digitalSignature only (critical; TLS here is ECDHE-only, so no key is ever
 * used to encipher), the profile's EKU, SKI, and an AKI equal to the
 * intermediate's SKI. CRL DP and AIA OCSP are added when the CA has URLs,
 * except on the OCSP signer (see below).
 *
 * Lifetimes: server/client/partner stay within the CA/Browser Forum's 398
 * days, default 90 like ACME CAs, so rotation is routine rather than an
 * annual fire drill. SPIFFE SVIDs are meant to be short-lived and renewed by
 * machines: default 1 day, at most 30. The OCSP signer carries
 * id-pkix-ocsp-nocheck, so nothing can revoke it (RFC 6960 4.2.2.2.1): its
 * life is the only bound on a stolen signer key, hence 30 days at most.
 */

/** EKU OIDs (RFC 5280 4.2.1.12). Plain strings, so this table loads without @peculiar/x509 and its Reflect shim. */
const eku = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
  ocspSigning: '1.3.6.1.5.5.7.3.9',
} as const
const DAY_MS = 86_400_000

/** Which SAN types a profile accepts and which it needs. */
export interface SanRule {
  /** SAN types that may appear. */
  readonly allowed: readonly SanType[]
  /** At least one SAN of these types is required (empty: none required). */
  readonly requireOneOf: readonly SanType[]
  /** Exactly one `spiffe://` URI SAN (SPIFFE X509-SVID spec, section 2). */
  readonly requireOneSpiffeId: boolean
}

/** SAN types the CA writes. `uri` covers SPIFFE ids. */
export type SanType = 'dns' | 'ip' | 'uri' | 'email'

/** What one profile puts in a certificate and how long it may be valid. */
export interface Profile {
  readonly extendedKeyUsage: readonly string[]
  readonly sans: SanRule
  readonly defaultValidityMs: number
  readonly maxValidityMs: number
  /** Adds id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1). */
  readonly hasOcspNoCheck: boolean
  /** Adds CRL DP and AIA OCSP when configured. False for the OCSP signer: with nocheck, clients never consult them. */
  readonly hasRevocationPointers: boolean
}

/** The profile table. Keys are the stable names used by the CLI, the inventory and policies. */
export const profiles = {
  server: {
    extendedKeyUsage: [eku.serverAuth],
    sans: { allowed: ['dns', 'ip'], requireOneOf: ['dns', 'ip'], requireOneSpiffeId: false },
    defaultValidityMs: 90 * DAY_MS,
    maxValidityMs: 398 * DAY_MS,
    hasOcspNoCheck: false,
    hasRevocationPointers: true,
  },
  client: {
    extendedKeyUsage: [eku.clientAuth],
    sans: { allowed: ['dns', 'uri', 'email'], requireOneOf: [], requireOneSpiffeId: false },
    defaultValidityMs: 90 * DAY_MS,
    maxValidityMs: 398 * DAY_MS,
    hasOcspNoCheck: false,
    hasRevocationPointers: true,
  },
  /** A partner organisation's client: clientAuth, with the partner's name as the subject's O and in the inventory. */
  partner: {
    extendedKeyUsage: [eku.clientAuth],
    sans: { allowed: ['dns', 'uri', 'email'], requireOneOf: [], requireOneSpiffeId: false },
    defaultValidityMs: 90 * DAY_MS,
    maxValidityMs: 398 * DAY_MS,
    hasOcspNoCheck: false,
    hasRevocationPointers: true,
  },
  /** A SPIFFE X509-SVID: one spiffe:// URI SAN, usable as client and server. */
  spiffe: {
    extendedKeyUsage: [eku.clientAuth, eku.serverAuth],
    sans: { allowed: ['uri', 'dns'], requireOneOf: ['uri'], requireOneSpiffeId: true },
    defaultValidityMs: 1 * DAY_MS,
    maxValidityMs: 30 * DAY_MS,
    hasOcspNoCheck: false,
    hasRevocationPointers: true,
  },
  ocsp_signer: {
    extendedKeyUsage: [eku.ocspSigning],
    sans: { allowed: [], requireOneOf: [], requireOneSpiffeId: false },
    defaultValidityMs: 7 * DAY_MS,
    maxValidityMs: 30 * DAY_MS,
    hasOcspNoCheck: true,
    hasRevocationPointers: false,
  },
} as const satisfies Record<string, Profile>

/** A profile name: 'server' | 'client' | 'partner' | 'spiffe' | 'ocsp_signer'. */
export type ProfileName = keyof typeof profiles

/** True for a known profile name; for validating CLI and config input. */
export function isProfileName(value: string): value is ProfileName {
  return Object.hasOwn(profiles, value)
}

/** OID of id-pkix-ocsp-nocheck (RFC 6960 4.2.2.2.1). */
export const ocspNoCheckOid = '1.3.6.1.5.5.7.48.1.5'
