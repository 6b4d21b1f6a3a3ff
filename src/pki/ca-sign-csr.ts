/**
 * `portcullis ca sign <csr>` and EST simpleenroll: signs a partner's PKCS#10
 * request under that partner's policy, or says which rule refused it.
 *
 * Order of checks (the first failure is the answer): parse → key types we
 * cannot verify at all → signature (proof of possession, before anything in
 * the CSR is believed) → signature algorithm → profile → CA:TRUE → key
 * policy → SANs (syntax, profile, policy) → subject → lifetime.
 *
 * Only these come from the CSR: the public key, the SANs and the subject's
 * one CN. Everything else — other subject attributes, key usages, EKUs,
 * basic constraints, policies, any other requested extension — is dropped;
 * the profile decides. The subject becomes `O=<partner>, CN=<cn>`, so a
 * partner can never claim another organisation's O in a certificate we sign.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import { createPublicKey, webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'
import type { Clock } from '../shared/clock.js'
import { signLeaf } from './ca-leaf.js'
import type { IssuedRecord } from './ca-leaf.js'
import type { LoadedCa } from './ca-load.js'
import { dnsNameAllowed } from './ca-names.js'
import type { San } from './ca-names.js'
import { checkKey, checkLifetime, checkPolicySans, checkProfileSans, compilePartnerPolicy, refuse } from './policy.js'
import type { CompiledPartnerPolicy, CsrRefusal, PartnerPolicy } from './policy.js'
import type { ProfileName } from './profiles.js'

const crypto = webcrypto as unknown as Crypto

/** Larger inputs are refused unparsed: a CSR is a few KiB at most. */
export const maxCsrBytes = 64 * 1024

const csrPemPattern = /^\s*-----BEGIN (NEW )?CERTIFICATE REQUEST-----\r?\n[A-Za-z0-9+/=\r\n]+-----END (NEW )?CERTIFICATE REQUEST-----\s*$/
const allowedHashes = new Set(['SHA-256', 'SHA-384', 'SHA-512'])
/** Curves whose ECDSA signatures WebCrypto verifies (P-521 is verified, then refused by policy). */
const verifiableCurves = new Set(['prime256v1', 'secp384r1', 'secp521r1'])
const sanOid = '2.5.29.17'
const basicConstraintsOid = '2.5.29.19'

/** What `signCsr` needs besides the CA and the CSR. */
export interface SignCsrOptions {
  readonly profile: ProfileName
  readonly partnerPolicy: PartnerPolicy | CompiledPartnerPolicy
  readonly clock: Clock
  /** Requested lifetime; default the profile's default, capped by the policy. */
  readonly validityMs?: number
}

/** A signed CSR: the certificate, the chain to present after it, and the inventory record. */
export interface CsrSigned {
  readonly ok: true
  readonly certPem: string
  readonly chainPem: string
  readonly record: IssuedRecord
}

type Parsed = { readonly ok: true; readonly csr: x509.Pkcs10CertificateRequest } | CsrRefusal

function parseCsr(csrPem: string): Parsed {
  if (Buffer.byteLength(csrPem) > maxCsrBytes || !csrPemPattern.test(csrPem)) return refuse('csr_malformed', 'expected one PEM CERTIFICATE REQUEST')
  try {
    return { ok: true, csr: new x509.Pkcs10CertificateRequest(csrPem) }
  } catch {
    return refuse('csr_malformed', 'not a PKCS#10 request')
  }
}

function sansOf(csr: x509.Pkcs10CertificateRequest): readonly San[] | CsrRefusal {
  const exts = csr.extensions.filter((e) => e.type === sanOid)
  if (exts.length > 1) return refuse('csr_malformed', 'more than one subjectAltName extension')
  const ext = exts[0]
  if (!ext) return []
  const items = new x509.SubjectAlternativeNameExtension(ext.rawData).names.items
  const sans: San[] = []
  for (const item of items) {
    if (item.type === 'dns') sans.push({ type: 'dns', value: item.value.toLowerCase() })
    else if (item.type === 'url') sans.push({ type: 'uri', value: item.value })
    else if (item.type === 'ip') sans.push({ type: 'ip', value: item.value })
    else if (item.type === 'email') sans.push({ type: 'email', value: item.value })
    else return refuse('san_type_not_allowed', `${item.type} SAN`)
  }
  return sans
}

function asksForCa(csr: x509.Pkcs10CertificateRequest): boolean {
  return csr.extensions.some((e) => e.type === basicConstraintsOid && new x509.BasicConstraintsExtension(e.rawData).ca)
}

/**
 * The subject's CN must be one of the granted SANs, an allowed CN, or a DNS
 * name the policy allows; at most one CN, at most 64 characters (RFC 5280
 * ub-common-name). Returns the CN (or undefined when the CSR has none).
 */
function checkCommonName(policy: CompiledPartnerPolicy, csr: x509.Pkcs10CertificateRequest, sans: readonly San[]): { cn: string | undefined } | CsrRefusal {
  const cns = csr.subjectName.getField('CN')
  if (cns.length > 1) return refuse('subject_not_allowed', 'more than one CN')
  const cn = cns[0]
  if (cn === undefined) return { cn: undefined }
  if (cn.length === 0 || cn.length > 64) return refuse('subject_not_allowed', 'CN must be 1-64 characters')
  const lower = cn.toLowerCase()
  const isGranted =
    sans.some((s) => (s.type === 'dns' ? s.value === lower : s.value === cn)) ||
    policy.allowedCommonNames.has(cn) ||
    policy.allowedDnsNames.some((p) => dnsNameAllowed(p, lower))
  return isGranted ? { cn } : refuse('subject_not_allowed', `CN "${cn}"`)
}

/**
 * Signs `csrPem` for the partner under `partnerPolicy`, or refuses it with
 * the rule that failed. Refusals are values (the requester's mistake or
 * attack is not an exception); CA problems (`ca_expired`) still throw.
 */
export async function signCsr(ca: LoadedCa, csrPem: string, opts: SignCsrOptions): Promise<CsrSigned | CsrRefusal> {
  const policy = compilePartnerPolicy(opts.partnerPolicy)
  const parsed = parseCsr(csrPem)
  if (!parsed.ok) return parsed
  const { csr } = parsed

  // Key type first, but only to refuse keys whose signature WebCrypto cannot
  // check (Ed25519, secp256k1, DSA...): without proof of possession we would
  // not sign them anyway, and their type alone reveals nothing about policy.
  const spkiDer = Buffer.from(csr.publicKey.rawData)
  let keyInfo: Parameters<typeof checkKey>[1]
  try {
    const key = createPublicKey({ key: spkiDer, format: 'der', type: 'spki' })
    keyInfo = { type: key.asymmetricKeyType, namedCurve: key.asymmetricKeyDetails?.namedCurve, modulusLength: key.asymmetricKeyDetails?.modulusLength }
  } catch {
    return refuse('key_type_not_allowed', 'unreadable public key')
  }
  const isVerifiable = keyInfo.type === 'rsa' || (keyInfo.type === 'ec' && verifiableCurves.has(keyInfo.namedCurve ?? ''))
  if (!isVerifiable) return refuse('key_type_not_allowed', keyInfo.type === 'ec' ? `EC curve ${keyInfo.namedCurve ?? 'unknown'}` : (keyInfo.type ?? 'unknown'))

  const isSignatureValid = await csr.verify(crypto).catch(() => false)
  if (!isSignatureValid) return refuse('csr_signature_invalid', 'signature does not verify')
  const hash = (csr.signatureAlgorithm as { hash?: { name?: string } }).hash?.name
  if (!hash || !allowedHashes.has(hash)) return refuse('csr_signature_algorithm_weak', hash ?? csr.signatureAlgorithm.name)

  if (!policy.allowedProfiles.has(opts.profile)) return refuse('profile_not_allowed', opts.profile)
  if (asksForCa(csr)) return refuse('ca_requested', 'basicConstraints CA:TRUE')

  const keyRefusal = checkKey(policy, keyInfo)
  if (keyRefusal) return keyRefusal

  const sans = sansOf(csr)
  if (!Array.isArray(sans)) return sans as CsrRefusal
  const sanRefusal = checkProfileSans(opts.profile, sans) ?? checkPolicySans(policy, sans)
  if (sanRefusal) return sanRefusal

  const subject = checkCommonName(policy, csr, sans)
  if ('ok' in subject) return subject
  if (subject.cn === undefined && sans.length === 0) return refuse('names_missing', 'neither a CN nor a SAN')

  const lifetime = checkLifetime(policy, opts.profile, opts.validityMs)
  if (!lifetime.ok) return lifetime

  const name = new x509.Name([{ O: [policy.name] }, ...(subject.cn === undefined ? [] : [{ CN: [subject.cn] }])])
  const { certPem, record } = await signLeaf(ca, {
    profile: opts.profile,
    subject: name,
    sans,
    spkiDer,
    validityMs: lifetime.validityMs,
    partner: policy.name,
    clock: opts.clock,
  })
  return { ok: true, certPem, chainPem: ca.chainPem, record }
}
