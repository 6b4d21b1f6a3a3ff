/**
 * What a partner may get signed: the refusal-rule table and the per-partner
 * policy that `signCsr` enforces. Pure: no I/O, no clock.
 *
 * Deny by default: a policy with no allowed names admits no names; a CSR that
 * asks for anything the policy does not grant is refused, naming the one rule
 * that failed, never trimmed to what is allowed (a partner asking for more
 * than it may have is a misconfiguration or an attack, and either way worth
 * a clear "no").
 */
import type { PkiConfig } from '../config/schema/index.js'
import { CaError } from './ca-errors.js'
import { dnsNameAllowed, isDnsName, isSpiffeId, sanSyntaxError, spiffeIdAllowed } from './ca-names.js'
import type { San } from './ca-names.js'
import { isProfileName, profiles } from './profiles.js'
import type { ProfileName } from './profiles.js'

/**
 * Every rule a CSR can fail, as stable snake_case codes (they reach the CLI,
 * the admin API and EST error bodies; never renamed or reused). The order is
 * the order `signCsr` checks them in.
 */
export const csrRefusalRules = {
  csr_malformed: 'Not a single parsable PKCS#10 certificate request in PEM',
  csr_signature_invalid: 'The CSR signature does not verify with its own public key (no proof of possession)',
  csr_signature_algorithm_weak: 'The CSR is signed with a forbidden algorithm (only SHA-256/384/512 are accepted)',
  profile_not_allowed: 'The partner may not request this profile',
  ca_requested: 'The CSR asks for a CA certificate (basicConstraints CA:TRUE)',
  key_type_not_allowed: 'Key type or curve not allowed (RSA, EC P-256 or P-384 only, as the policy permits)',
  key_too_weak: 'RSA key shorter than the minimum (2048 bits, or the policy minimum)',
  san_type_not_allowed: 'A SAN type the profile does not allow (IP, email, non-SPIFFE URI, other names)',
  dns_name_invalid: 'A DNS SAN that is not a valid lower-case host name',
  dns_name_not_allowed: "A DNS SAN outside the partner's allowed names",
  spiffe_id_invalid: 'A URI SAN that is not a valid SPIFFE id',
  spiffe_id_not_allowed: "A SPIFFE id outside the partner's allowed prefixes",
  spiffe_id_count: 'The SPIFFE profile needs exactly one SPIFFE id',
  names_missing: 'The profile needs a name the CSR does not carry',
  subject_not_allowed: 'The subject common name is neither one of the granted SANs nor an allowed name',
  lifetime_too_long: "The requested lifetime exceeds the profile's or the partner's maximum",
} as const satisfies Record<string, string>

/** A refusal code from `csrRefusalRules`. */
export type CsrRefusalRule = keyof typeof csrRefusalRules

/** A refused CSR: the one rule that failed and what about it (safe to show the requester). */
export interface CsrRefusal {
  readonly ok: false
  readonly rule: CsrRefusalRule
  readonly detail: string
}

/** Key types a policy can allow. RSA is one entry; its strength is `minRsaBits`. */
export type CsrKeyType = 'ec-p256' | 'ec-p384' | 'rsa'

/**
 * One partner's signing policy, as configured. Unset lists allow nothing;
 * unset limits fall back to the profile's.
 */
export interface PartnerPolicy {
  /** Partner name: recorded in the inventory and written as the subject's O. */
  readonly name: string
  /** Profiles this partner may request. Default: ['partner']. */
  readonly allowedProfiles?: readonly ProfileName[]
  /** DNS SANs: exact names or `*.suffix` (any name below suffix). */
  readonly allowedDnsNames?: readonly string[]
  /** SPIFFE ids: prefixes matched at a path-segment boundary. */
  readonly allowedSpiffePrefixes?: readonly string[]
  /** Extra subject CNs allowed besides the granted SANs (exact). */
  readonly allowedCommonNames?: readonly string[]
  /** Default: all of 'ec-p256', 'ec-p384', 'rsa'. */
  readonly allowedKeyTypes?: readonly CsrKeyType[]
  /** Minimum RSA modulus; values below 2048 are refused at compile time. Default 2048. */
  readonly minRsaBits?: number
  /** Longest lifetime this partner may get; capped by the profile's own maximum. */
  readonly maxLifetimeMs?: number
}

/** A validated, normalised policy; build with `compilePartnerPolicy` once, use for every CSR. */
export interface CompiledPartnerPolicy {
  readonly name: string
  readonly allowedProfiles: ReadonlySet<ProfileName>
  readonly allowedDnsNames: readonly string[]
  readonly allowedSpiffePrefixes: readonly string[]
  readonly allowedCommonNames: ReadonlySet<string>
  readonly allowedKeyTypes: ReadonlySet<CsrKeyType>
  readonly minRsaBits: number
  readonly maxLifetimeMs: number | undefined
  readonly compiled: true
}

/** The floor for RSA keys (NIST SP 800-131A); no policy can go below it. */
export const minRsaBitsFloor = 2048
/** Above this an RSA key only costs verification time for every peer; refused as unsupported. */
export const maxRsaBits = 8192

function bad(detail: string): never {
  throw new CaError('ca_config_invalid', detail)
}

/**
 * Validates and normalises a policy. Throws `ca_config_invalid` naming the
 * bad entry, so a policy mistake fails when config is loaded, not on the
 * first CSR.
 */
export function compilePartnerPolicy(policy: PartnerPolicy | CompiledPartnerPolicy): CompiledPartnerPolicy {
  if ('compiled' in policy) return policy
  if (!/^[\x21-\x7e]([\x20-\x7e]{0,62}[\x21-\x7e])?$/.test(policy.name)) bad(`partner name "${policy.name}" must be 1-64 printable ASCII characters`)
  const allowedProfiles = policy.allowedProfiles ?? ['partner']
  for (const p of allowedProfiles) if (!isProfileName(p)) bad(`unknown profile "${String(p)}"`)
  const allowedDnsNames = (policy.allowedDnsNames ?? []).map((n) => {
    const name = n.toLowerCase()
    if (!isDnsName(name)) bad(`allowedDnsNames: "${n}" is not a host name or *.suffix`)
    if (name.startsWith('*.') && name.split('.').length < 3) bad(`allowedDnsNames: "${n}" covers a whole top-level domain`)
    return name
  })
  const allowedSpiffePrefixes = (policy.allowedSpiffePrefixes ?? []).map((p) => {
    const prefix = p.endsWith('/') ? p.slice(0, -1) : p
    if (!isSpiffeId(prefix)) bad(`allowedSpiffePrefixes: "${p}" is not a SPIFFE id prefix`)
    return prefix
  })
  const allowedKeyTypes = policy.allowedKeyTypes ?? ['ec-p256', 'ec-p384', 'rsa']
  for (const k of allowedKeyTypes) if (k !== 'ec-p256' && k !== 'ec-p384' && k !== 'rsa') bad(`unknown key type "${String(k)}"`)
  const minRsaBits = policy.minRsaBits ?? minRsaBitsFloor
  if (!Number.isInteger(minRsaBits) || minRsaBits < minRsaBitsFloor) bad(`minRsaBits must be at least ${minRsaBitsFloor}`)
  if (policy.maxLifetimeMs !== undefined && (!Number.isSafeInteger(policy.maxLifetimeMs) || policy.maxLifetimeMs <= 0)) {
    bad('maxLifetimeMs must be a positive number of milliseconds')
  }
  return {
    name: policy.name,
    allowedProfiles: new Set(allowedProfiles),
    allowedDnsNames,
    allowedSpiffePrefixes,
    allowedCommonNames: new Set(policy.allowedCommonNames ?? []),
    allowedKeyTypes: new Set(allowedKeyTypes),
    minRsaBits,
    maxLifetimeMs: policy.maxLifetimeMs,
    compiled: true,
  }
}

/** A refusal value. */
export function refuse(rule: CsrRefusalRule, detail: string): CsrRefusal {
  return { ok: false, rule, detail }
}

/**
 * SAN shape a profile needs: allowed types, valid syntax, required names,
 * one SPIFFE id for `spiffe`. Used for CSRs and for operator-issued
 * certificates alike (the latter map a refusal to `issue_invalid`).
 */
export function checkProfileSans(profile: ProfileName, sans: readonly San[]): CsrRefusal | undefined {
  const rule = profiles[profile].sans
  for (const san of sans) {
    if (!(rule.allowed as readonly string[]).includes(san.type)) return refuse('san_type_not_allowed', `${san.type} SAN in a ${profile} certificate`)
    const error = sanSyntaxError(san)
    if (error) return refuse(san.type === 'dns' ? 'dns_name_invalid' : san.type === 'uri' ? 'spiffe_id_invalid' : 'san_type_not_allowed', error)
  }
  if (rule.requireOneSpiffeId) {
    const count = sans.filter((s) => s.type === 'uri').length
    if (count !== 1) return refuse('spiffe_id_count', `${count} SPIFFE ids`)
  }
  if (rule.requireOneOf.length > 0 && !sans.some((s) => (rule.requireOneOf as readonly string[]).includes(s.type))) {
    return refuse('names_missing', `a ${profile} certificate needs a ${rule.requireOneOf.join(' or ')} SAN`)
  }
  return undefined
}

/** Are these (syntax-checked) SANs within the partner's allowed names? */
export function checkPolicySans(policy: CompiledPartnerPolicy, sans: readonly San[]): CsrRefusal | undefined {
  for (const san of sans) {
    if (san.type === 'dns' && !policy.allowedDnsNames.some((p) => dnsNameAllowed(p, san.value))) {
      return refuse('dns_name_not_allowed', san.value)
    }
    if (san.type === 'uri' && !policy.allowedSpiffePrefixes.some((p) => spiffeIdAllowed(p, san.value))) {
      return refuse('spiffe_id_not_allowed', san.value)
    }
    // Partners get no IP or email SANs: nothing in the policy could scope them.
    if (san.type === 'ip' || san.type === 'email') return refuse('san_type_not_allowed', `${san.type} SANs are not granted to partners`)
  }
  return undefined
}

/** Is this CSR public key acceptable? `key` describes it as Node's KeyObject does. */
export function checkKey(
  policy: CompiledPartnerPolicy,
  key: { readonly type: string | undefined; readonly namedCurve?: string | undefined; readonly modulusLength?: number | undefined },
): CsrRefusal | undefined {
  if (key.type === 'ec') {
    const kind: CsrKeyType | undefined = key.namedCurve === 'prime256v1' ? 'ec-p256' : key.namedCurve === 'secp384r1' ? 'ec-p384' : undefined
    if (!kind) return refuse('key_type_not_allowed', `EC curve ${key.namedCurve ?? 'unknown'}`)
    if (!policy.allowedKeyTypes.has(kind)) return refuse('key_type_not_allowed', kind)
    return undefined
  }
  if (key.type === 'rsa') {
    if (!policy.allowedKeyTypes.has('rsa')) return refuse('key_type_not_allowed', 'rsa')
    const bits = key.modulusLength ?? 0
    if (bits < policy.minRsaBits) return refuse('key_too_weak', `RSA ${bits} bits; at least ${policy.minRsaBits} required`)
    if (bits > maxRsaBits) return refuse('key_type_not_allowed', `RSA ${bits} bits; at most ${maxRsaBits} supported`)
    return undefined
  }
  // rsa-pss, dsa, ed25519, ed448, x25519...: not accepted by the TLS peers we serve, or not signing keys.
  return refuse('key_type_not_allowed', key.type ?? 'unknown')
}

/**
 * Is the requested lifetime within the profile's and the partner's maximum?
 * Returns the lifetime to issue (the request, or the smaller maximum when
 * none was asked for).
 */
export function checkLifetime(
  policy: CompiledPartnerPolicy,
  profile: ProfileName,
  requestedMs: number | undefined,
): CsrRefusal | { readonly ok: true; readonly validityMs: number } {
  const max = Math.min(profiles[profile].maxValidityMs, policy.maxLifetimeMs ?? Infinity)
  if (requestedMs === undefined) return { ok: true, validityMs: Math.min(profiles[profile].defaultValidityMs, max) }
  if (!Number.isSafeInteger(requestedMs) || requestedMs <= 0) return refuse('lifetime_too_long', 'lifetime must be a positive number of milliseconds')
  if (requestedMs > max) return refuse('lifetime_too_long', `${requestedMs} ms requested; at most ${max} ms`)
  return { ok: true, validityMs: requestedMs }
}

/** The config's `pki.partners.NAME` as the policy `signCsr` enforces. */
export function partnerPolicyOf(name: string, partner: PkiConfig['partners'][string]): PartnerPolicy {
  return {
    name,
    allowedProfiles: partner.profiles,
    allowedDnsNames: partner.dnsNames,
    allowedSpiffePrefixes: partner.spiffePrefixes,
    allowedCommonNames: partner.commonNames,
    allowedKeyTypes: partner.keyTypes,
    minRsaBits: partner.minRsaBits,
    maxLifetimeMs: partner.maxLifetime,
  }
}
