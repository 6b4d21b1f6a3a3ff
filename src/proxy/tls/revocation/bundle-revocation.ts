/**
 * The revocation status of one certificate under one trust bundle's policy.
 *
 * Answers synchronously whenever the caches can (the common case: one Map
 * read per source), and with a promise only when a CRL, an OCSP answer or a
 * CRL file's signature check is not at hand yet.
 *
 * Order of evidence, for each certificate:
 * 1. a verified CRL already in memory (file, or cached from a distribution
 *    point, current or not) that lists the serial, or a cached OCSP answer
 *    "revoked": revoked, whatever `prefer` says; revocation is final, and a
 *    signed statement proves it;
 * 2. the sources in `prefer` order (OCSP for leaves with an AIA responder;
 *    CRL files for the issuer, then the certificate's distribution points);
 *    the first current answer decides;
 * 3. otherwise unknown, with every cause, for failMode to decide.
 * An expired CRL never says "good"; a CRL is used only for the CA that
 * signed it (signature, name and keyUsage cRLSign checked).
 */
import type { OcspAnswer } from '../../../pki/ocsp-client.js'
import type { ListenerConfig } from '../../../config/schema/listeners.js'
import { KeyUsage } from '../cert-fields.js'
import type { ParsedCert } from '../trust.js'
import type { SignatureCheck } from '../signature.js'
import type { CertSources } from './cert-sources.js'
import type { CrlIssuer } from './crl-cache.js'
import type { SignedPart } from './crl-worker.js'
import type { ExternalRevocation } from './external-revocation.js'
import type { RevocationList } from './revocation-list.js'

/** A trust bundle's `revocation` block, validated. */
export type RevocationPolicy = NonNullable<ListenerConfig['tls']['clientAuth']['revocation']>

/** One certificate to check, with the CA that issued it. */
export interface CertLink {
  readonly der: Buffer
  readonly fingerprint: string
  /** Canonical serial: lowercase hex, no leading zeros. */
  readonly serial: string
  readonly subject: string
  readonly isCa: boolean
  readonly issuer: ParsedCert
  readonly sources: CertSources
}

/** What is known about one certificate. `isError`: a source failed (counted as "error"), rather than had no answer. */
export interface CertStatus {
  readonly result: 'good' | 'revoked' | 'unknown'
  readonly source: 'crl' | 'ocsp' | 'none'
  readonly detail: string
  readonly isError: boolean
}

/** A CRL read from a file at compile time, with its signature checks per issuing CA. */
export interface FileCrl {
  readonly list: RevocationList
  readonly signed: SignedPart
  /** By CA fingerprint: the result, or the running check. */
  readonly checks: Map<string, SignatureCheck | Promise<void>>
}

/** Something is loading; evaluate again once it settles. */
interface Wait {
  readonly wait: Promise<unknown>
}

/** Evaluation rounds at most per certificate: one per source kind, plus one. */
const maxRounds = 4
/** A CRL issued this far in the future is not current yet (clock skew allowance). */
const maxSkewMs = 5 * 60_000

const iso = (ms: number) => new Date(ms).toISOString()
const good = (source: 'crl' | 'ocsp', detail: string): CertStatus => ({ result: 'good', source, detail, isError: false })
const unknown = (source: CertStatus['source'], detail: string, isError: boolean): CertStatus => ({ result: 'unknown', source, detail, isError })

function revoked(link: CertLink, source: 'crl' | 'ocsp', revokedAt: number | undefined, reason: string | undefined, where: string): CertStatus {
  const when = revokedAt === undefined ? '' : ` at ${iso(revokedAt)}`
  return { result: 'revoked', source, detail: `serial ${link.serial} revoked${when} (${reason ?? 'unspecified'}) per ${where}`, isError: false }
}

/** OCSP answers are cached by issuing CA and serial. */
function ocspKey(link: CertLink): string {
  return `${link.issuer.fingerprint} ${link.serial}`
}

function crlIssuerOf(ca: ParsedCert): CrlIssuer {
  return { fingerprint: ca.fingerprint, subject: ca.fields.subject.text, publicKey: ca.publicKey }
}

/** RFC 5280 §4.2.1.3: a CA whose keyUsage lacks cRLSign cannot sign CRLs. */
export function maySignCrls(ca: ParsedCert): boolean {
  return !ca.fields.keyUsage || ca.fields.keyUsage.has(KeyUsage.cRLSign)
}

/** One trust bundle's revocation policy, bound to the listener's shared caches. */
export class BundleRevocation {
  private readonly order: readonly ('ocsp' | 'crl')[]

  constructor(
    /** Label for logs and metrics: "default" or the bundle's first server name. */
    readonly trust: string,
    readonly policy: RevocationPolicy,
    private readonly files: readonly FileCrl[],
    private readonly shared: ExternalRevocation,
  ) {
    this.order = policy.prefer === 'ocsp' ? ['ocsp', 'crl'] : ['crl', 'ocsp']
  }

  /** The certificates the policy checks: the leaf, and the intermediates with scope "chain". */
  includes(link: CertLink): boolean {
    return !link.isCa || this.policy.scope === 'chain'
  }

  /** The status of one certificate: now when the caches know, else once the sources answered. */
  statusOf(link: CertLink): CertStatus | Promise<CertStatus> {
    const first = this.evaluate(link, true)
    return 'wait' in first ? this.settle(link, first) : first
  }

  /**
   * For connections already admitted: revoked per a CRL in memory, or not
   * (undefined). Fetches nothing; may wait for a CRL file's signature check.
   */
  revokedNow(link: CertLink): CertStatus | undefined | Promise<CertStatus | undefined> {
    const found = this.evidence(link)
    if (!found || !('wait' in found)) return found
    return found.wait.then(() => {
      const again = this.evidence(link)
      return again && 'wait' in again ? undefined : again
    })
  }

  private async settle(link: CertLink, pending: Wait): Promise<CertStatus> {
    for (let round = 1; round < maxRounds; round++) {
      await pending.wait
      const next = this.evaluate(link, false)
      if (!('wait' in next)) return next
      pending = next
    }
    return unknown('none', 'revocation sources did not settle', true)
  }

  private evaluate(link: CertLink, isFirstRound: boolean): CertStatus | Wait {
    const evidence = this.evidence(link)
    if (evidence) return evidence
    const causes: string[] = []
    let isError = false
    let source: CertStatus['source'] = 'none'
    for (const kind of this.order) {
      const step = kind === 'ocsp' ? this.ocspStep(link, isFirstRound) : this.crlStep(link)
      if (!step) continue
      if ('wait' in step || step.result !== 'unknown') return step
      causes.push(step.detail)
      isError ||= step.isError
      source = step.source
    }
    if (causes.length > 0) return unknown(source, causes.join('; '), isError)
    const named = this.policy.ocsp && !link.isCa ? 'no OCSP responder, CRL distribution point or CRL file' : 'no CRL distribution point or CRL file'
    return unknown('none', `${named} for ${link.isCa ? 'CA' : 'certificate'} ${link.subject} (issuer ${link.issuer.fields.subject.text})`, false)
  }

  /** CRLs in memory and verified for this issuer that list the serial. */
  private evidence(link: CertLink): CertStatus | Wait | undefined {
    const waits: Promise<unknown>[] = []
    for (const file of this.filesFor(link.issuer)) {
      const check = this.fileCheck(file, link.issuer)
      if (check instanceof Promise) waits.push(check)
      else if (check === 'valid' && !file.list.scopeProblem({ isCa: link.isCa, crlUrls: link.sources.crlUrls })) {
        const entry = file.list.find(link.serial)
        if (entry) return revoked(link, 'crl', entry.revokedAt, entry.reason, `CRL file ${file.list.origin}`)
      }
    }
    if (this.policy.crlDistributionPoints) {
      const issuer = crlIssuerOf(link.issuer)
      for (const url of link.sources.crlUrls) {
        const list = this.shared.crls.peek(url, issuer)?.list
        const entry = list && !list.scopeProblem({ isCa: link.isCa, crlUrls: link.sources.crlUrls }) ? list.find(link.serial) : undefined
        if (entry) return revoked(link, 'crl', entry.revokedAt, entry.reason, `CRL at ${url}`)
      }
    }
    const url = link.sources.ocspUrl
    if (this.policy.ocsp && !link.isCa && url !== undefined) {
      const answer = this.shared.ocsp.peek(ocspKey(link))?.answer
      if (answer?.status === 'revoked') return this.fromAnswer(link, answer, url)
    }
    return waits.length > 0 ? { wait: Promise.all(waits) } : undefined
  }

  private filesFor(issuer: ParsedCert): FileCrl[] {
    return this.files.filter((f) => f.list.issuer === issuer.fields.subject.text)
  }

  /** The signature check of a CRL file against `issuer`: its result, or a promise while it runs in the worker. */
  private fileCheck(file: FileCrl, issuer: ParsedCert): SignatureCheck | Promise<void> {
    const known = file.checks.get(issuer.fingerprint)
    if (known !== undefined) return known
    if (!maySignCrls(issuer)) {
      file.checks.set(issuer.fingerprint, 'invalid')
      return 'invalid'
    }
    const running = this.shared.pool.verify(file.signed, issuer.publicKey).then(
      (result) => void file.checks.set(issuer.fingerprint, result),
      () => void file.checks.set(issuer.fingerprint, 'unsupported'),
    )
    file.checks.set(issuer.fingerprint, running)
    return running
  }

  private crlStep(link: CertLink): CertStatus | Wait | undefined {
    const now = this.shared.clock.now()
    const scoped = { isCa: link.isCa, crlUrls: link.sources.crlUrls }
    const causes: string[] = []
    const waits: Promise<unknown>[] = []
    let isError = false
    for (const file of this.filesFor(link.issuer)) {
      const check = this.fileCheck(file, link.issuer)
      if (check instanceof Promise) {
        waits.push(check)
        continue
      }
      const where = `CRL file ${file.list.origin}`
      const scope = file.list.scopeProblem(scoped)
      const { nextUpdate, thisUpdate } = file.list
      if (check !== 'valid') {
        causes.push(`${where} is not signed by ${link.issuer.fields.subject.text}`)
        isError = true
      } else if (scope) causes.push(scope)
      else if (thisUpdate > now + maxSkewMs) causes.push(`${where} is not valid before ${iso(thisUpdate)}`)
      else if (nextUpdate !== undefined && now >= nextUpdate) causes.push(`${where} expired at ${iso(nextUpdate)} (nextUpdate)`)
      else return good('crl', where)
    }
    const urls = this.policy.crlDistributionPoints ? link.sources.crlUrls : []
    if (urls.length > 0 && !maySignCrls(link.issuer)) {
      causes.push(`issuer ${link.issuer.fields.subject.text} may not sign CRLs (keyUsage lacks cRLSign)`)
      isError = true
    } else {
      const issuer = crlIssuerOf(link.issuer)
      for (const url of urls) {
        const entry = this.shared.crls.peek(url, issuer)
        const list = entry?.list
        const isCurrent = list !== undefined && now < entry!.currentUntil
        const scope = list?.scopeProblem(scoped)
        if (isCurrent && !scope) return good('crl', `CRL at ${url}`)
        if (entry?.loading) waits.push(entry.loading)
        else if (!isCurrent && now >= (entry?.retryAt ?? 0)) waits.push(this.shared.crls.load(url, issuer, this.crlSettings()))
        else if (entry?.error) {
          causes.push(`CRL at ${url} ${entry.error}`)
          isError = true
        } else if (scope) causes.push(scope)
        else if (list) causes.push(`CRL at ${url} expired at ${iso(entry!.currentUntil)}`)
      }
    }
    if (waits.length > 0) return { wait: Promise.all(waits) }
    if (causes.length === 0) return undefined
    return unknown('crl', causes.join('; '), isError)
  }

  private ocspStep(link: CertLink, isFirstRound: boolean): CertStatus | Wait | undefined {
    const url = link.sources.ocspUrl
    if (!this.policy.ocsp || link.isCa || url === undefined) return undefined
    const key = ocspKey(link)
    const entry = this.shared.ocsp.peek(key)
    if (entry?.answer) {
      if (isFirstRound) this.shared.metrics.ocspLookup(true)
      return this.fromAnswer(link, entry.answer, url)
    }
    if (entry?.loading) return { wait: entry.loading }
    if (entry && this.shared.clock.now() < entry.retryAt) return unknown('ocsp', `OCSP ${entry.cause ?? 'failed'}`, true)
    this.shared.metrics.ocspLookup(false)
    const query = { certDer: link.der, issuerDer: link.issuer.der, url, timeoutMs: this.policy.fetchTimeout, now: () => this.shared.clock.now() }
    return { wait: this.shared.ocsp.load(key, query, this.policy.cacheOcspFor) }
  }

  private fromAnswer(link: CertLink, answer: OcspAnswer, url: string): CertStatus {
    const where = `OCSP responder ${url}`
    if (answer.status === 'good') return good('ocsp', where)
    if (answer.status === 'revoked') return revoked(link, 'ocsp', answer.revokedAt, answer.reason, where)
    return unknown('ocsp', `${where} does not know the certificate (status unknown)`, false)
  }

  private crlSettings() {
    return {
      timeoutMs: this.policy.fetchTimeout,
      maxBytes: this.policy.maxCrlSize,
      refreshBeforeMs: this.policy.refreshBeforeNextUpdate,
      refreshIntervalMs: this.policy.crlRefreshInterval,
    }
  }
}
