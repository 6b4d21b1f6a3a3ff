/**
 * OCSP stapling for the gateway's own server certificates: each certificate
 * whose AIA names an OCSP responder gets a verified response fetched in the
 * background and handed to Node's `'OCSPRequest'` event from memory.
 *
 * Measured on Node 20.20 / OpenSSL 3.0 (`http2.createSecureServer` with
 * `allowHTTP1` and an SNICallback, the listener's setup): `'OCSPRequest'` is
 * emitted for every client that sends status_request — TLS 1.2 and TLS 1.3,
 * ALPN h2, http/1.1 or none, with or without SNI — with the certificate of
 * the context the SNI callback chose. The handshake waits for the callback,
 * so it is answered from the cache and never waits on the network, except
 * while a certificate's very first fetch is in flight (after start or a hot
 * swap), and then only until `firstResponseWaitMs` after the fetch started. Resumed sessions send no
 * certificate and get no staple, as OpenSSL does.
 *
 * Decisions:
 * - The cache is keyed by the certificate's SHA-256, so a reload or a managed
 *   renewal that swaps the certificate gets its own response, and a
 *   certificate served by two listeners is fetched once. `track()` is called
 *   with the running set after every apply; entries of certificates no
 *   longer served are dropped with their timers.
 * - Refresh at half of (nextUpdate − thisUpdate), at least `MIN_REFRESH_MS`
 *   apart; a failure is retried with doubling backoff (1 s to 5 min). The
 *   last good response is served until its nextUpdate, then nothing: a stale
 *   staple is worse than none (clients treat it as a failure, not as "no
 *   information"). A response without nextUpdate is served for at most
 *   `NO_NEXT_UPDATE_MS`.
 * - Only `good` is ever stapled. `revoked` drops the staple at once and is
 *   logged as an error (the gateway is serving a revoked certificate: replace
 *   it); `unknown` is a warning and retried with backoff (the responder's
 *   storage may be catching up). Every state change is logged once, not
 *   every retry.
 * - No `require` mode that refuses handshakes without a staple: it would turn
 *   a responder outage into a gateway outage, and clients that want the
 *   guarantee get it from the certificate (RFC 7633 TLS Feature
 *   "must-staple"). For such a certificate stapling cannot be switched off:
 *   `off`, or no OCSP URL or issuer to ask about, is a config issue
 *   ({@link stapleTargetFor}).
 * - The issuer must be in the certificate file (leaf, then issuer: managed
 *   certificates are written that way). Node's own `issuer` argument is not
 *   used: it comes from whatever store the context had, the client trust
 *   bundle included.
 * - The one import from `pki/` is the OCSP client, a protocol library with
 *   no CA key or storage behind it.
 */
import type { X509Certificate } from 'node:crypto'
import { AsnConvert } from '@peculiar/asn1-schema'
import { Certificate } from '@peculiar/asn1-x509'
import { ocspUrlOf, queryOcsp, type OcspAnswer } from '../../pki/ocsp-client.js'
import type { Clock } from '../../shared/clock.js'
import type { Logger } from '../../shared/log.js'
import { sha256Hex } from './identity.js'

/** `tls.ocspStapling` of a listener. */
export type OcspStaplingMode = 'auto' | 'off'

/** A server certificate to keep a stapled response for. */
export interface StapleTarget {
  /** Lowercase hex SHA-256 of `certDer`: the cache key. */
  readonly fingerprint: string
  readonly certDer: Uint8Array
  readonly issuerDer: Uint8Array
  readonly url: string
  /** Subject and serial, for logs. */
  readonly subject: string
  readonly serial: string
}

/** Node's `'OCSPRequest'` callback: a response to staple, or none. */
export type StapleCallback = (err: Error | null, response?: Buffer) => void

/** Tunables; the defaults suit production. */
export interface OcspStaplerDeps {
  readonly clock: Clock
  readonly log: Logger
  /** Bound of one fetch. Default 5000 ms. */
  readonly fetchTimeoutMs?: number
  /** How long after a certificate is tracked handshakes may wait for its first response (a hanging responder delays only those). Default 500 ms. */
  readonly firstResponseWaitMs?: number
}

/** Shortest time between two fetches for one certificate; also the first retry delay. */
export const MIN_REFRESH_MS = 1000
/** Longest retry delay after failures (the backoff doubles up to it). */
export const MAX_RETRY_MS = 5 * 60_000
/** How long a response without nextUpdate is stapled, from its thisUpdate. */
export const NO_NEXT_UPDATE_MS = 3_600_000
/** RFC 7633 TLS Feature extension; the status_request feature is 5. */
const ID_PE_TLSFEATURE = '1.3.6.1.5.5.7.1.24'
const STATUS_REQUEST = 5

type State = 'good' | 'revoked' | 'unknown' | 'expired' | `failed:${string}`

interface Entry {
  readonly target: StapleTarget
  /** A good response and when it stops being servable (ms, by the clock). */
  staple: { readonly der: Buffer; readonly validUntil: number } | undefined
  state: State | undefined
  /** Settles when the first fetch has; undefined once it has. */
  first: Promise<void> | undefined
  /** performance.now() after which handshakes stop waiting for the first fetch. */
  readonly firstWaitUntil: number
  failures: number
  timer: NodeJS.Timeout | undefined
  isDropped: boolean
}

/**
 * What a listener certificate needs for stapling under `mode`: a target, or
 * nothing, or (for a must-staple certificate that cannot be stapled) an issue
 * message for the config.
 */
export function stapleTargetFor(
  leaf: X509Certificate,
  issuer: X509Certificate | undefined,
  mode: OcspStaplingMode,
): { readonly target?: StapleTarget; readonly issue?: string } {
  const url = ocspUrlOf(leaf.raw)
  if (isMustStaple(leaf.raw)) {
    if (mode === 'off') return { issue: 'the certificate requires stapling (TLS Feature must-staple); ocspStapling cannot be "off"' }
    if (!url) return { issue: 'the certificate requires stapling (TLS Feature must-staple) but names no http(s) OCSP responder' }
    if (!issuer) return { issue: 'the certificate requires stapling (TLS Feature must-staple); add its issuer certificate after it in the file' }
  }
  if (mode === 'off' || !url || !issuer) return {}
  return {
    target: {
      fingerprint: sha256Hex(leaf.raw),
      certDer: leaf.raw,
      issuerDer: issuer.raw,
      url,
      subject: leaf.subject.replace(/\n/g, ', '),
      serial: leaf.serialNumber.toLowerCase(),
    },
  }
}

/** True when the certificate carries the RFC 7633 TLS Feature extension with status_request. */
function isMustStaple(der: Uint8Array): boolean {
  let ext
  try {
    ext = AsnConvert.parse(der, Certificate).tbsCertificate.extensions?.find((e) => e.extnID === ID_PE_TLSFEATURE)
  } catch {
    return false
  }
  if (!ext) return false
  // Features ::= SEQUENCE OF INTEGER; each value here fits in one octet.
  const v = new Uint8Array(ext.extnValue.buffer)
  for (let i = 2; i + 2 < v.length; i += 2 + v[i + 1]!) {
    if (v[i] === 0x02 && v[i + 1] === 1 && v[i + 2] === STATUS_REQUEST) return true
  }
  return false
}

/** The process's staple cache. One per Gateway; the listeners ask it at each handshake. */
export class OcspStapler {
  private readonly entries = new Map<string, Entry>()
  private readonly fetchTimeoutMs: number
  private readonly firstResponseWaitMs: number

  constructor(private readonly deps: OcspStaplerDeps) {
    this.fetchTimeoutMs = deps.fetchTimeoutMs ?? 5000
    this.firstResponseWaitMs = deps.firstResponseWaitMs ?? 500
  }

  /**
   * Makes `targets` the set stapled for: new certificates are fetched now,
   * kept ones keep their response and schedule, the others are dropped.
   * `track([])` stops everything.
   */
  track(targets: readonly StapleTarget[]): void {
    const wanted = new Map(targets.map((t) => [t.fingerprint, t]))
    for (const [fp, entry] of this.entries) {
      if (wanted.has(fp)) continue
      entry.isDropped = true
      clearTimeout(entry.timer)
      this.entries.delete(fp)
    }
    for (const [fp, target] of wanted) {
      if (this.entries.has(fp)) continue
      const entry: Entry = {
        target,
        staple: undefined,
        state: undefined,
        first: undefined,
        firstWaitUntil: performance.now() + this.firstResponseWaitMs,
        failures: 0,
        timer: undefined,
        isDropped: false,
      }
      this.entries.set(fp, entry)
      entry.first = this.fetch(entry).finally(() => {
        entry.first = undefined
      })
    }
  }

  /** Answers one `'OCSPRequest'`: the cached good response for `certificate`, or none. */
  staple(certificate: Buffer, callback: StapleCallback): void {
    const entry = this.entries.get(sha256Hex(certificate))
    if (!entry) return callback(null)
    const waitMs = entry.first ? entry.firstWaitUntil - performance.now() : 0
    if (!entry.first || waitMs <= 0) return callback(null, this.servable(entry))
    let isDone = false
    const answer = (): void => {
      if (isDone) return
      isDone = true
      clearTimeout(timer)
      callback(null, this.servable(entry))
    }
    const timer = setTimeout(answer, waitMs)
    void entry.first.then(answer)
  }

  /** The response to staple now, if any; an expired one is dropped (and logged once). */
  private servable(entry: Entry): Buffer | undefined {
    const staple = entry.staple
    if (!staple) return undefined
    if (this.deps.clock.now() < staple.validUntil) return staple.der
    entry.staple = undefined
    this.transition(entry, 'expired', 'warn', 'OCSP staple expired before a refresh succeeded; stapling nothing until the responder answers')
    return undefined
  }

  private async fetch(entry: Entry): Promise<void> {
    const { target } = entry
    let answer: OcspAnswer
    try {
      answer = await queryOcsp({ certDer: target.certDer, issuerDer: target.issuerDer, url: target.url, timeoutMs: this.fetchTimeoutMs, now: () => this.deps.clock.now() })
    } catch (err) {
      if (entry.isDropped) return
      const e = err as { code?: string; message?: string }
      this.transition(entry, `failed:${e.code ?? 'error'}`, 'warn', `OCSP fetch for stapling failed (${e.message ?? String(err)}); ${entry.staple ? 'the last good response is served until its nextUpdate' : 'no staple'}; retrying`)
      return this.retry(entry)
    }
    if (entry.isDropped) return
    if (answer.status === 'revoked') {
      entry.staple = undefined
      this.transition(entry, 'revoked', 'error', `the OCSP responder says this server certificate is REVOKED (${answer.reason ?? 'no reason given'}); nothing is stapled; replace the certificate`)
      return this.schedule(entry, this.refreshDelay(answer))
    }
    if (answer.status === 'unknown') {
      entry.staple = undefined
      this.transition(entry, 'unknown', 'warn', 'the OCSP responder does not know this server certificate; nothing is stapled; retrying')
      return this.retry(entry)
    }
    entry.failures = 0
    entry.staple = { der: Buffer.from(answer.responseDer), validUntil: answer.nextUpdate ?? answer.thisUpdate + NO_NEXT_UPDATE_MS }
    this.transition(entry, 'good', 'info', 'OCSP response stapled', { nextUpdate: new Date(entry.staple.validUntil).toISOString() })
    this.schedule(entry, this.refreshDelay(answer))
  }

  /** Half the response's validity from thisUpdate, measured from now. */
  private refreshDelay(answer: OcspAnswer): number {
    const until = answer.nextUpdate ?? answer.thisUpdate + NO_NEXT_UPDATE_MS
    return Math.max(MIN_REFRESH_MS, answer.thisUpdate + (until - answer.thisUpdate) / 2 - this.deps.clock.now())
  }

  private retry(entry: Entry): void {
    entry.failures++
    this.schedule(entry, Math.min(MAX_RETRY_MS, MIN_REFRESH_MS * 2 ** (entry.failures - 1)))
  }

  private schedule(entry: Entry, delayMs: number): void {
    clearTimeout(entry.timer)
    entry.timer = setTimeout(() => void this.fetch(entry), delayMs)
    entry.timer.unref()
  }

  private transition(entry: Entry, state: State, level: 'info' | 'warn' | 'error', message: string, extra: Record<string, unknown> = {}): void {
    if (entry.state === state) return
    entry.state = state
    const { subject, serial, url, fingerprint } = entry.target
    this.deps.log[level]({ subject, serial, fingerprint, url, ...extra }, message)
  }
}
