/**
 * What the expiry monitor watches, read from the config the gateway runs
 * and the files it names: listener certificates and the intermediates served
 * after them, client trust bundles (default and per server name), upstream
 * client certificates and CA bundles, and the files of managed certificates.
 * The built-in CA and its inventory come from the PKI service
 * (expiry-issued.ts).
 *
 * Decisions:
 * - Parsed with our own DER reader (proxy/tls/cert-fields.ts), so subjects
 *   are RFC 4514 text everywhere and serials lower-case hex without leading
 *   zeros, as `portcullis ca list` prints them.
 * - A file that cannot be read or parsed here is reported, not thrown: the
 *   running gateway loaded it at compile time, so this is a file changed
 *   since, and one bad file must not hide the expiry of the others.
 * - The identity assertion key has no certificate and nothing to watch.
 * - `kinds` is the one table of certificate kinds: the metric's `kind` label
 *   and the advice each log warning gives.
 */
import type { Config } from '../config/schema/index.js'
import type { PemSource } from '../config/schema/common.js'
import { readPem, type SourceContext } from '../config/secrets.js'
import { readCertFields } from '../proxy/tls/cert-fields.js'
import { sha256Hex } from '../proxy/tls/identity.js'
import { splitPem } from '../proxy/tls/pem.js'

/** Every kind of watched certificate and what an operator should do when one nears its end. Codes leave the process (metric labels); never rename them. */
export const kinds = {
  listener_certificate: 'replace the server certificate and key files and run `portcullis reload` (or list it under pki.managedCertificates to have it renewed)',
  listener_chain: 'get the issuing CA\'s new intermediate, put it after the leaf in the certificate file and reload',
  client_trust_anchor: 'clients chaining to this CA will be refused once it expires: add its successor to the trust bundle beside it, reload, and move clients over',
  upstream_client_certificate: 'renew the upstream client certificate (tls.cert/tls.key) and reload, or the upstream will refuse the gateway',
  upstream_client_chain: 'get the issuing CA\'s new intermediate, put it after the leaf in tls.cert and reload',
  upstream_ca: 'the upstream\'s certificates cannot be verified once this CA expires: add its successor to tls.ca and reload',
  managed_certificate: 'it should have been renewed at two-thirds of its lifetime: look for "managed certificate" errors in the log (CA passphrase, inventory, file permissions)',
  ca_root: 'the built-in CA\'s root expires: create a successor CA (`portcullis ca init` in a new folder) and distribute its root to every relying party',
  ca_intermediate: 'the built-in CA cannot issue beyond this date: create a successor CA and move issuance to it',
  issued: 'the holder must renew it (a new CSR via `portcullis ca sign` or EST); revoke it if it is no longer used',
} as const

/** A `kinds` code: the metric's `kind` label. */
export type CertificateKind = keyof typeof kinds

/** One place a certificate is used. */
export interface CertificateUse {
  readonly kind: CertificateKind
  /** Short and bounded, for the metric's `name` label: the listener, upstream or managed certificate; the partner (or "(profile)") of an issued one; "pki" for the CA. */
  readonly name: string
  /** Where it is configured, for logs: a config path and its source, e.g. `listeners.main.tls.certificates.0 (certs/server.pem)`. */
  readonly location: string
}

/** A certificate in one place it is used. */
export interface WatchedCertificate extends CertificateUse {
  readonly subject: string
  readonly issuer: string
  /** Lower-case hex without leading zeros. */
  readonly serial: string
  readonly notBefore: number
  readonly notAfter: number
  /** Lower-case hex SHA-256 of the DER: one certificate used in several places is announced once. */
  readonly fingerprint256: string
}

/** A certificate that could not be read; logged by the monitor. */
export interface ReadProblem {
  readonly location: string
  readonly message: string
}

/** The certificates found and the problems met. */
export interface Collected {
  readonly certificates: WatchedCertificate[]
  readonly problems: ReadProblem[]
}

function sourceName(source: PemSource): string {
  return 'file' in source ? source.file : 'env' in source ? `$${source.env}` : 'inline pem'
}

/**
 * The CERTIFICATE blocks of `pem`, each as a WatchedCertificate; `kindAt`
 * gives the kind by position (undefined: skip it). Throws on PEM or DER that
 * does not parse.
 */
export function parseCertificates(pem: string, kindAt: (index: number) => CertificateKind | undefined, use: Omit<CertificateUse, 'kind'>): WatchedCertificate[] {
  const out: WatchedCertificate[] = []
  splitPem(pem)
    .filter((b) => b.label === 'CERTIFICATE')
    .forEach((block, i) => {
      const kind = kindAt(i)
      if (!kind) return
      const f = readCertFields(block.der)
      out.push({
        kind,
        ...use,
        subject: f.subject.text,
        issuer: f.issuer.text,
        serial: f.serialNumber.replace(/^0+(?=.)/, ''),
        notBefore: f.notBefore,
        notAfter: f.notAfter,
        fingerprint256: sha256Hex(block.der),
      })
    })
  return out
}

/** Reads one source into `into`, or records why it could not be read. */
function collect(into: Collected, source: PemSource, ctx: SourceContext, path: string, name: string, kindAt: (index: number) => CertificateKind | undefined): void {
  const location = `${path} (${sourceName(source)})`
  try {
    into.certificates.push(...parseCertificates(readPem(source, ctx), kindAt, { name, location }))
  } catch (err) {
    into.problems.push({ location, message: (err as Error).message })
  }
}

const leafThen = (leaf: CertificateKind, chain: CertificateKind) => (i: number) => (i === 0 ? leaf : chain)

/**
 * The certificates of listeners and upstreams in `config`, read from their
 * sources now. The monitor calls it once per applied config version, right
 * after the apply read the same files, so it sees what is being served.
 */
export function configuredCertificates(config: Config, ctx: SourceContext): Collected {
  const out: Collected = { certificates: [], problems: [] }
  for (const l of config.listeners) {
    const base = `listeners.${l.name}.tls`
    l.tls.certificates.forEach((c, i) => collect(out, c.cert, ctx, `${base}.certificates.${i}`, l.name, leafThen('listener_certificate', 'listener_chain')))
    const auth = l.tls.clientAuth
    if (auth.mode === 'none') continue
    auth.trustBundle.forEach((s, k) => collect(out, s, ctx, `${base}.clientAuth.trustBundle.${k}`, l.name, () => 'client_trust_anchor'))
    auth.perServerName.forEach((o, i) =>
      o.trustBundle.forEach((s, k) => collect(out, s, ctx, `${base}.clientAuth.perServerName.${i}.trustBundle.${k}`, l.name, () => 'client_trust_anchor')),
    )
  }
  for (const [name, u] of Object.entries(config.upstreams)) {
    const base = `upstreams.${name}.tls`
    if (u.tls?.cert) collect(out, u.tls.cert, ctx, `${base}.cert`, name, leafThen('upstream_client_certificate', 'upstream_client_chain'))
    u.tls?.ca?.forEach((s, k) => collect(out, s, ctx, `${base}.ca.${k}`, name, () => 'upstream_ca'))
  }
  return out
}

/**
 * The leaves of `pki.managedCertificates`, read from their files now (the
 * CA service rewrites them on renewal; the chain after the leaf is the CA's
 * intermediate, watched as `ca_intermediate`). A missing file is not a
 * problem: the CA service is about to create it.
 */
export function managedCertificates(config: Config, ctx: SourceContext): Collected {
  const out: Collected = { certificates: [], problems: [] }
  for (const m of config.pki?.managedCertificates ?? []) {
    const location = `pki.managedCertificates.${m.name} (${m.certFile})`
    let pem: string
    try {
      pem = readPem({ file: m.certFile }, ctx)
    } catch (err) {
      if (!/ENOENT/.test((err as Error).message)) out.problems.push({ location, message: (err as Error).message })
      continue
    }
    try {
      out.certificates.push(...parseCertificates(pem, (i) => (i === 0 ? 'managed_certificate' : undefined), { name: m.name, location }))
    } catch (err) {
      out.problems.push({ location, message: (err as Error).message })
    }
  }
  return out
}
