/**
 * `portcullis ca issue`: the CA generates the key and the certificate for an
 * operator (or for the gateway's own server and upstream-client certificates).
 * The operator is trusted with the subject and names, but the profile's rules
 * still hold: SAN types and syntax, lifetime limits.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import * as x509 from '@peculiar/x509'
import type { Clock } from '../shared/clock.js'
import { CaError } from './ca-errors.js'
import { signLeaf } from './ca-leaf.js'
import type { IssuedRecord } from './ca-leaf.js'
import type { LoadedCa } from './ca-load.js'
import type { San } from './ca-names.js'
import { defaultKeyAlgorithm, encryptPrivateKey, generateKey, plainPrivateKey, spkiOf } from './keys.js'
import type { KeyAlgorithmName } from './keys.js'
import { checkProfileSans } from './policy.js'
import { profiles } from './profiles.js'
import type { ProfileName } from './profiles.js'

/** What to issue. */
export interface IssueOptions {
  readonly profile: ProfileName
  /** DN string, e.g. "CN=orders, O=Acme". Must not be empty. For `partner`, must hold O=<partner>. */
  readonly subject: string
  readonly sans?: readonly San[]
  /** Default: the profile's default; above its maximum is refused. */
  readonly validityMs?: number
  /** Default 'ec-p256'. */
  readonly keyAlgorithm?: KeyAlgorithmName
  /** Required for the partner profile; recorded in the inventory. */
  readonly partner?: string
  /**
   * Encrypt the returned key with this passphrase (encrypted PKCS#8). Absent:
   * a plain PKCS#8 key, for a caller that writes it 0600 at once (the
   * gateway's own certificates); say so explicitly with `plainKey: true`.
   */
  readonly keyPassphrase?: string
  readonly plainKey?: boolean
  readonly clock: Clock
}

/** An issued certificate with its new private key (PEM, PKCS#8; encrypted when a passphrase was given). */
export interface IssuedCertificate {
  readonly certPem: string
  readonly keyPem: string
  /** Intermediate then root: what the holder presents after its certificate. */
  readonly chainPem: string
  readonly record: IssuedRecord
}

function invalid(detail: string): never {
  throw new CaError('issue_invalid', detail)
}

/**
 * Generates a key and issues a certificate for it. Throws `issue_invalid`
 * naming the problem (before generating anything), `ca_expired` if the
 * intermediate is not valid now.
 */
export async function issueCertificate(ca: LoadedCa, opts: IssueOptions): Promise<IssuedCertificate> {
  const profile = profiles[opts.profile]
  if (!profile) invalid(`unknown profile "${String(opts.profile)}"`)
  if (opts.keyPassphrase === undefined && opts.plainKey !== true) invalid('give keyPassphrase, or plainKey: true for an unencrypted key')
  let subject: x509.Name
  try {
    subject = new x509.Name(opts.subject)
  } catch {
    invalid('subject is not a distinguished name')
  }
  if (subject.toJSON().length === 0) invalid('subject is empty')
  if (opts.profile === 'partner') {
    if (!opts.partner) invalid('the partner profile needs a partner name')
    const orgs = subject.getField('O')
    if (orgs.length !== 1 || orgs[0] !== opts.partner) invalid(`a partner certificate's subject must have O=${opts.partner}`)
  }
  const sans = opts.sans ?? []
  const sanRefusal = checkProfileSans(opts.profile, sans)
  if (sanRefusal) invalid(`${sanRefusal.rule}: ${sanRefusal.detail}`)
  const validityMs = opts.validityMs ?? profile.defaultValidityMs
  if (!Number.isSafeInteger(validityMs) || validityMs <= 0 || validityMs > profile.maxValidityMs) {
    invalid(`validityMs must be between 1 and ${profile.maxValidityMs} for ${opts.profile}`)
  }

  const key = await generateKey(opts.keyAlgorithm ?? defaultKeyAlgorithm)
  const { certPem, record } = await signLeaf(ca, {
    profile: opts.profile,
    subject,
    sans,
    spkiDer: spkiOf(key),
    validityMs,
    ...(opts.partner === undefined ? {} : { partner: opts.partner }),
    clock: opts.clock,
  })
  const keyPem = opts.keyPassphrase === undefined ? plainPrivateKey(key) : encryptPrivateKey(key, opts.keyPassphrase)
  return { certPem, keyPem, chainPem: ca.chainPem, record }
}
