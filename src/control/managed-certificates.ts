/**
 * Certificates the gateway keeps fresh for itself (`pki.managedCertificates`):
 * its listeners' server certificates and its upstream client certificates,
 * issued by the built-in CA, written to the files the config's `{ file }` PEM
 * sources point at, and replaced at two-thirds of their lifetime. The caller
 * (main.ts before the first apply; the PKI service on its tick) hot-swaps them
 * with `Gateway.reload()`, so established connections keep their certificate.
 *
 * Decisions:
 * - A certificate is (re)issued when its files are missing or unreadable, the
 *   key does not belong to the certificate, the certificate was not issued by
 *   the loaded intermediate (a re-initialised CA), it no longer says what the
 *   config asks (subject, SANs, profile's EKU), it is revoked in the
 *   inventory, or `renewalDue` says so. Files are the state: nothing else is
 *   remembered between checks, so a restart or an operator deleting the files
 *   converges the same way.
 * - The key is generated fresh on every renewal (never re-certified), in the
 *   CA's key algorithm, and written unencrypted with mode 0600: the gateway
 *   must read it without an operator. It is never logged.
 * - The inventory row is written before the files: a certificate that serves
 *   must be known to the OCSP responder (a serial we never recorded is
 *   `unknown`). A crash between the two leaves an unused row, which is harmless.
 * - Key first, then certificate, each atomically (`writeFileAtomic`). A
 *   reload that lands between the two sees a key that does not match the
 *   certificate and is refused, so the old pair keeps serving until the next
 *   reload; no reader ever sees half a file.
 * - The certificate file holds the leaf then the intermediate (not the
 *   root): what a TLS peer needs to build the path to the root it trusts.
 * - The superseded certificate is not revoked: in-flight connections still
 *   present it, and it expires on its own within a third of its lifetime.
 * - Entries fail independently: one bad entry does not stop the others from
 *   renewing; failures are returned for the caller to treat as a start error
 *   or a logged, retried tick.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import { X509Certificate as NodeX509, createPrivateKey, type KeyObject } from 'node:crypto'
import { mkdir, readFile } from 'node:fs/promises'
import { dirname, isAbsolute, resolve } from 'node:path'
import * as x509 from '@peculiar/x509'
import type { PkiConfig } from '../config/schema/index.js'
import type { SourceContext } from '../config/secrets.js'
import { issueCertificate } from '../pki/ca-issue.js'
import type { LoadedCa } from '../pki/ca-load.js'
import type { San } from '../pki/ca-names.js'
import { profiles } from '../pki/profiles.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import { writeFileAtomic } from '../shared/private-files.js'
import type { CertificateInventory } from '../storage/types.js'
import { toInventoryRecord } from './inventory-record.js'
import { renewalDue } from './renewal.js'

/** One `pki.managedCertificates` entry (validated). */
export type ManagedCertificateConfig = PkiConfig['managedCertificates'][number]

/** What ensuring needs: the loaded CA to issue from, the inventory to record in, where relative paths start. */
export interface ManagedCertificateDeps {
  readonly ca: LoadedCa
  readonly inventory: CertificateInventory
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
}

/** Why an entry was (re)issued; stable values for logs and tests. */
export type RenewalReason = 'missing' | 'unreadable' | 'key_mismatch' | 'foreign_issuer' | 'config_changed' | 'revoked' | 'renewal_due'

/** The outcome of one pass: names renewed (the caller reloads when non-empty) and entries that failed. */
export interface EnsureResult {
  readonly renewed: string[]
  readonly failed: { readonly name: string; readonly error: string }[]
}

/** Mode of the certificate file: public material. The key file is always 0600. */
const CERT_MODE = 0o644
const KEY_MODE = 0o600

const sanTypes: Record<string, San['type']> = { dns: 'dns', ip: 'ip', uri: 'uri', email: 'email' }

/** "DNS:x" → { type: 'dns', value: 'x' } (the schema already checked the shape). */
export function parseManagedSan(text: string): San {
  const colon = text.indexOf(':')
  const type = sanTypes[text.slice(0, colon).toLowerCase()]
  if (colon <= 0 || !type) throw new Error(`SAN "${text}" must be DNS:name, IP:address, URI:uri or email:address`)
  return { type, value: text.slice(colon + 1) }
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Checks every managed certificate and issues the ones that need it (see the
 * module comment for when). Never throws for one entry's failure; returns it.
 */
export async function ensureManagedCertificates(cfg: Pick<PkiConfig, 'managedCertificates'>, deps: ManagedCertificateDeps): Promise<EnsureResult> {
  const renewed: string[] = []
  const failed: { name: string; error: string }[] = []
  for (const entry of cfg.managedCertificates) {
    try {
      const reason = await whyRenew(entry, deps)
      if (reason === undefined) continue
      await renew(entry, reason, deps)
      renewed.push(entry.name)
    } catch (err) {
      deps.log.error({ certificate: entry.name, err: describe(err) }, 'managed certificate: renewal failed; the current files stay')
      failed.push({ name: entry.name, error: describe(err) })
    }
  }
  return { renewed, failed }
}

function pathOf(file: string, source: SourceContext): string {
  return isAbsolute(file) ? file : resolve(source.baseDir, file)
}

/** Why the entry's files must be replaced now, or undefined when they are fine. */
export async function whyRenew(entry: ManagedCertificateConfig, deps: ManagedCertificateDeps): Promise<RenewalReason | undefined> {
  let certPem: string
  let keyPem: string
  try {
    ;[certPem, keyPem] = await Promise.all([readFile(pathOf(entry.certFile, deps.source), 'utf8'), readFile(pathOf(entry.keyFile, deps.source), 'utf8')])
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'missing' : 'unreadable'
  }
  let cert: NodeX509
  let key: KeyObject
  let parsed: x509.X509Certificate
  try {
    cert = new NodeX509(certPem) // the first certificate in the file: the leaf
    parsed = new x509.X509Certificate(cert.raw.toString('base64'))
    key = createPrivateKey(keyPem)
  } catch {
    return 'unreadable'
  }
  if (key.type !== 'private' || !cert.checkPrivateKey(key)) return 'key_mismatch'
  const issuer = new NodeX509(deps.ca.intermediate.toString('pem'))
  if (!cert.checkIssued(issuer) || !cert.verify(issuer.publicKey)) return 'foreign_issuer'
  if (!matchesConfig(parsed, entry)) return 'config_changed'
  const serial = parsed.serialNumber.toLowerCase()
  const record = await deps.inventory.get(serial)
  if (record?.status === 'revoked') return 'revoked'
  const window = { notBefore: parsed.notBefore.getTime(), notAfter: parsed.notAfter.getTime() }
  return renewalDue(window, deps.clock.now()) ? 'renewal_due' : undefined
}

/** Subject, SANs and EKU as the config asks; compared after the same normalisation on both sides, so a good file never loops into re-issue. */
function matchesConfig(cert: x509.X509Certificate, entry: ManagedCertificateConfig): boolean {
  let subject: string
  let wanted: string[]
  try {
    subject = new x509.Name(entry.subject).toString()
    wanted = entry.sans.map(parseManagedSan).map((s) => sanKey(new x509.GeneralName(s.type === 'uri' ? 'url' : s.type, s.value)))
  } catch {
    return false // an unissuable entry: let issuing report exactly why
  }
  if (cert.subject !== subject) return false
  const ext = cert.getExtension(x509.SubjectAlternativeNameExtension)
  const present = ext ? ext.names.items.map(sanKey) : []
  if (!sameSet(present, wanted)) return false
  const eku = cert.getExtension(x509.ExtendedKeyUsageExtension)
  return sameSet(eku ? eku.usages.map(String) : [], [...profiles[entry.profile].extendedKeyUsage])
}

function sanKey(name: x509.GeneralName): string {
  const { type, value } = name.toJSON()
  return `${type}:${type === 'dns' ? value.toLowerCase() : value}`
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  const x = [...a].sort()
  const y = [...b].sort()
  return x.length === y.length && x.every((v, i) => v === y[i])
}

async function renew(entry: ManagedCertificateConfig, reason: RenewalReason, deps: ManagedCertificateDeps): Promise<void> {
  const { ca, clock } = deps
  const issued = await issueCertificate(ca, {
    profile: entry.profile,
    subject: entry.subject,
    sans: entry.sans.map(parseManagedSan),
    validityMs: entry.validity,
    keyAlgorithm: ca.keyAlgorithm,
    plainKey: true,
    clock,
  })
  await deps.inventory.add(toInventoryRecord(issued.record))
  const certFile = pathOf(entry.certFile, deps.source)
  const keyFile = pathOf(entry.keyFile, deps.source)
  await mkdir(dirname(keyFile), { recursive: true, mode: 0o700 })
  await mkdir(dirname(certFile), { recursive: true, mode: 0o700 })
  await writeFileAtomic(keyFile, issued.keyPem, KEY_MODE)
  const intermediate = ca.intermediate.toString('pem').trimEnd() + '\n'
  await writeFileAtomic(certFile, issued.certPem.trimEnd() + '\n' + intermediate, CERT_MODE)
  const { serial, notBefore, notAfter } = issued.record
  const fields = { certificate: entry.name, reason, serial, notAfter: new Date(notAfter).toISOString(), certFile }
  if (notAfter < notBefore + entry.validity) {
    deps.log.warn(fields, "managed certificate: lifetime cut short by the issuing CA's own expiry; renew the CA")
  }
  deps.log.info(fields, 'managed certificate issued')
}
