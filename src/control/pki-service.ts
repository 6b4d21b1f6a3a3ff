/**
 * The running gateway's side of the built-in CA: it keeps the data plane's
 * revoked set in step with the inventory, publishes the CRL, answers OCSP,
 * and serves both over plain HTTP. The CLI (`portcullis ca revoke`) only
 * writes the inventory; this service is how a revocation reaches the
 * listeners, the CRL and the OCSP answers without a restart.
 *
 * Decisions:
 * - Sync by polling `revokedSince` every `revocationSync` ms (one indexed
 *   query; works the same on SQLite and Postgres, no notification channel to
 *   configure). Each poll looks back `SYNC_OVERLAP_MS` before the newest
 *   revocation seen, because `revokedAt` is the revoking process's clock and
 *   a revocation committed late with an earlier time must not be missed;
 *   entries already known are skipped, and `RevocationSet.add` is idempotent.
 * - Records carry no issuer, so every entry is added with the intermediate's
 *   SHA-256: a certificate from another CA with a colliding serial is not
 *   refused by our revocations.
 * - The CRL lists every revoked certificate (expired ones too: removing them
 *   saves bytes but loses the answer for anyone validating a signature made
 *   in the past). Its number comes from the key-value store with
 *   compare-and-set (`crl-number.ts`), so it increases across restarts and
 *   across gateways sharing storage. It is rebuilt at once when a new
 *   revocation is synced, and when `crlRegenerationReason` says so (two
 *   thirds of `crlValidity`, clock steps); a failed build keeps the previous
 *   CRL serving and is retried on the next tick.
 * - OCSP is signed by a delegated `ocsp_signer` certificate issued at start,
 *   lifetime 7 days, kept only in memory (the intermediate key never signs
 *   responses directly, and a stolen responder key expires on its own). It
 *   is re-issued once two thirds of its lifetime have passed. It is not put
 *   in the inventory: it carries id-pkix-ocsp-nocheck and is never presented
 *   by a client, and one row per gateway start would bury the partner rows.
 *   Status comes from the inventory itself (not from the synced set), so an
 *   OCSP answer is never behind storage; a serial we never issued is
 *   `unknown`.
 * - A storage or signing failure on a tick is logged and retried on the next
 *   one; it never crashes the process. Failures at start throw, so main.ts
 *   refuses to run with a CA it cannot load.
 * - Managed certificates (`pki.managedCertificates`) are checked on the tick,
 *   at most once per `MANAGED_CHECK_INTERVAL_MS` of the injected clock (the
 *   tick itself runs every `revocationSync`, far more often than a 2/3-of-
 *   lifetime deadline needs). When any was renewed, `onRenewed` is called
 *   (main.ts reloads the gateway, which hot-swaps the files). A failed check
 *   is logged and retried at the next interval; the old files keep serving.
 * - Client certificate sightings (`proxy/certificate-sightings.ts`) are
 *   written to the inventory's lastSeenAt every `SIGHTINGS_FLUSH_INTERVAL_MS`
 *   and at close: the data plane only notes them in memory, and one batched
 *   write every few seconds costs storage nothing per connection. A failed
 *   write puts them back for the next flush.
 * - The HTTP endpoint is plain HTTP by design (RFC 5280 §4.2.1.13, RFC 6960
 *   Appendix A: CRLs and OCSP responses are signed, and TLS here would make
 *   revocation checking depend on revocation checking). Short timeouts keep
 *   slow clients from holding sockets. Besides `/crl` (DER), `/crl.pem` and
 *   `/ocsp`, it also serves the paths of the URLs written into issued
 *   certificates (ca.json), so a certificate's CDP/AIA URL works when it
 *   points at this endpoint.
 * - With `pki.est`, the EST enrollment server (`est/est-server.ts`) runs on
 *   its own HTTPS port beside it, sharing the loaded CA and the storage; a
 *   renewed managed certificate is handed to it too, since the gateway's
 *   reload does not reach it.
 */
import { createHash, createPrivateKey } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { resolve } from 'node:path'
import type { PkiConfig } from '../config/schema/index.js'
import { readSecret, type SourceContext } from '../config/secrets.js'
import { issueCertificate } from '../pki/ca-issue.js'
import { ensureManagedCertificates, type EnsureResult } from './managed-certificates.js'
import { loadCa, type LoadedCa } from '../pki/ca-load.js'
import { buildCrl, type RevokedEntry } from '../pki/crl.js'
import { createCrlHttpHandler, type PublishedCrl } from '../pki/crl-http.js'
import { crlRegenerationReason, type CrlRegenerationReason } from '../pki/crl-publisher.js'
import { createOcspHttpHandler } from '../pki/ocsp-http.js'
import { createOcspResponder, type CertStatusResult, type OcspResponder } from '../pki/ocsp-responder.js'
import type { PkiExpiryView } from '../observability/expiry-issued.js'
import type { Registry } from '../observability/metrics.js'
import type { CertificateSightings } from '../proxy/certificate-sightings.js'
import type { RevocationSet } from '../proxy/revocation-set.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import { StorageLimitError, type CertificateRecord } from '../storage/types.js'
import { nextCrlNumber } from './crl-number.js'
import { startEstServer, type EstServer } from './est/est-server.js'
import { openPkiStorage, type PkiStorage } from './open-pki-storage.js'

/** What the service needs from the composition root. */
export interface PkiServiceDeps {
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  /** The process-wide set the Gateway's listeners enforce. */
  readonly revocation: RevocationSet
  /** Where the service registers its metrics; optional in tests. */
  readonly metrics?: Registry
  /**
   * Called with the names of managed certificates that were just renewed
   * (main.ts: `gateway.reload()`). Returning false (or throwing) means the
   * swap did not happen: it is retried at the next check, since the files on
   * disk are already new and the check alone would find nothing to do.
   */
  readonly onRenewed?: (renewed: readonly string[]) => Promise<boolean | void> | boolean | void
  /** The listeners' notes of presented client certificates; flushed to the inventory's lastSeenAt. */
  readonly sightings?: CertificateSightings
}

/** A running PKI service. */
export interface PkiService {
  /** Bound port of the CRL/OCSP endpoint (useful with port 0); undefined without `pki.http`. */
  readonly port: number | undefined
  /** Bound port of the EST server (HTTPS); undefined without `pki.est`. */
  readonly estPort: number | undefined
  /** The CA's certificates and the inventory, for the expiry monitor (read-only use). */
  readonly expiryView: PkiExpiryView
  /** Stops the sync timer, the HTTP endpoint and the storage connection. Idempotent. */
  close(): Promise<void>
}

/** How far back each poll looks before the newest revocation seen (clock skew between the revoking process and us). */
export const SYNC_OVERLAP_MS = 5 * 60_000
/** Lifetime of the delegated OCSP signer. */
export const OCSP_SIGNER_VALIDITY_MS = 7 * 24 * 3600_000
/** How often (by the injected clock) managed certificates are checked for renewal. */
export const MANAGED_CHECK_INTERVAL_MS = 60_000
/** How often (by the injected clock) the listeners' certificate sightings are written to the inventory. */
export const SIGHTINGS_FLUSH_INTERVAL_MS = 5_000
/** Socket-level limits of the HTTP endpoint: answers are small and signed in advance. */
const HTTP_TIMEOUT_MS = 5000

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err)
}

/**
 * Opens the inventory, loads the CA, syncs every revocation into
 * `deps.revocation`, publishes the first CRL, issues the OCSP signer and
 * (with `cfg.http`) starts the HTTP endpoint; then polls. Throws an Error
 * whose message says which step failed; nothing is left running then.
 */
export async function startPkiService(cfg: PkiConfig, deps: PkiServiceDeps): Promise<PkiService> {
  let storage: PkiStorage
  try {
    storage = await openPkiStorage(cfg.inventory, deps)
  } catch (cause) {
    throw new Error(`pki: cannot open the certificate inventory: ${describe(cause)}`, { cause })
  }
  const service = new Service(cfg, deps, storage)
  try {
    await service.start()
    return service
  } catch (err) {
    await service.close().catch(() => undefined)
    throw err
  }
}

/** Loads the CA named by `cfg` (folder relative to the config file, passphrase from its secret reference); the message says which folder failed. */
export async function loadPkiCa(cfg: Pick<PkiConfig, 'caDir' | 'passphrase'>, source: SourceContext): Promise<LoadedCa> {
  const dir = resolve(source.baseDir, cfg.caDir)
  try {
    const passphrase = readSecret(cfg.passphrase, source)
    return await loadCa({ dir, passphrase })
  } catch (cause) {
    throw new Error(`pki: cannot load the CA in ${dir}: ${describe(cause)}`, { cause })
  }
}

/**
 * For main.ts before the first apply: opens the inventory, loads the CA and
 * ensures every managed certificate, then closes both, so listeners may point
 * at managed files that do not exist yet. Does nothing without entries.
 * Throws an Error naming the step or the entries that failed.
 */
export async function ensureManagedCertificatesAtStart(
  cfg: PkiConfig,
  deps: { readonly source: SourceContext; readonly clock: Clock; readonly log: Logger },
): Promise<EnsureResult> {
  if (cfg.managedCertificates.length === 0) return { renewed: [], failed: [] }
  let storage: PkiStorage
  try {
    storage = await openPkiStorage(cfg.inventory, deps)
  } catch (cause) {
    throw new Error(`pki: cannot open the certificate inventory: ${describe(cause)}`, { cause })
  }
  try {
    const ca = await loadPkiCa(cfg, deps.source)
    const result = await ensureManagedCertificates(cfg, { ...deps, ca, inventory: storage.inventory })
    if (result.failed.length > 0) {
      throw new Error(`pki: cannot issue managed certificates: ${result.failed.map((f) => `${f.name}: ${f.error}`).join('; ')}`)
    }
    return result
  } finally {
    await storage.close()
  }
}

interface Signer {
  readonly responder: OcspResponder
  readonly renewAt: number
}

class Service implements PkiService {
  private ca: LoadedCa | undefined
  private issuerFingerprint = ''
  /** Every revoked certificate seen, by serial: the CRL's entries. */
  private readonly revoked = new Map<string, RevokedEntry>()
  private lastSeen = 0
  private crl: PublishedCrl | undefined
  /** A revocation was synced that the served CRL does not list yet. */
  private isCrlStale = true
  private signer: Signer | undefined
  private nextManagedCheck = 0
  private nextSightingsFlush = 0
  /** Renewed names whose hot-swap failed; handed to onRenewed again at the next check. */
  private readonly unswapped = new Set<string>()
  private server: Server | undefined
  private est: EstServer | undefined
  private timer: NodeJS.Timeout | undefined
  private running: Promise<void> | undefined
  private isClosed = false
  private closing: Promise<void> | undefined

  constructor(
    private readonly cfg: PkiConfig,
    private readonly deps: PkiServiceDeps,
    private readonly storage: PkiStorage,
  ) {}

  get port(): number | undefined {
    return (this.server?.address() as AddressInfo | null)?.port
  }

  get expiryView(): PkiExpiryView {
    const ca = this.ca!
    return { caDir: ca.dir, rootPem: ca.root.toString('pem'), intermediatePem: ca.intermediate.toString('pem'), inventory: this.storage.inventory }
  }

  get estPort(): number | undefined {
    return this.est?.port
  }

  async start(): Promise<void> {
    this.ca = await loadPkiCa(this.cfg, this.deps.source)
    // main.ts ensured them just before; the first check is one interval later.
    this.nextManagedCheck = this.deps.clock.now() + MANAGED_CHECK_INTERVAL_MS
    this.issuerFingerprint = createHash('sha256').update(new Uint8Array(this.ca.intermediate.rawData)).digest('hex')
    this.deps.sightings?.watch(this.issuerFingerprint)
    try {
      await this.sync()
    } catch (cause) {
      throw new Error(`pki: cannot read revocations from the inventory: ${describe(cause)}`, { cause })
    }
    try {
      await this.publishCrl('missing')
    } catch (cause) {
      throw new Error(`pki: cannot build the CRL: ${describe(cause)}`, { cause })
    }
    try {
      await this.renewSigner()
    } catch (cause) {
      throw new Error(`pki: cannot issue the OCSP signer certificate: ${describe(cause)}`, { cause })
    }
    if (this.cfg.http) {
      const { host, port } = this.cfg.http
      try {
        await this.listen(host, port)
      } catch (cause) {
        throw new Error(`pki: cannot listen on ${host}:${port}: ${(cause as NodeJS.ErrnoException).code ?? describe(cause)}`, { cause })
      }
      this.deps.log.info({ host, port: this.port }, 'pki: serving /crl and /ocsp')
    }
    if (this.cfg.est) {
      const { host, port } = this.cfg.est
      try {
        this.est = await startEstServer(this.cfg.est, { ...this.deps, ca: this.ca, inventory: this.storage.inventory, kv: this.storage.kv, partners: this.cfg.partners })
      } catch (cause) {
        throw new Error(`pki: cannot start the EST server on ${host}:${port}: ${(cause as NodeJS.ErrnoException).code ?? describe(cause)}`, { cause })
      }
      this.deps.log.info({ host, port: this.est.port }, 'pki: serving EST at /.well-known/est/')
    }
    this.schedule()
  }

  /** Reads revocations since the last poll (with overlap) and adds the new ones to the revoked set. Returns how many were new. */
  private async sync(): Promise<number> {
    const since = Math.max(0, this.lastSeen - SYNC_OVERLAP_MS)
    const records = await this.storage.inventory.revokedSince(since)
    const fresh: CertificateRecord[] = []
    for (const r of records) {
      if (r.status !== 'revoked' || r.revokedAt === undefined || this.revoked.has(r.serial)) continue
      this.revoked.set(r.serial, { serial: r.serial, revokedAt: r.revokedAt, reason: r.revocationReason ?? 'unspecified' })
      this.lastSeen = Math.max(this.lastSeen, r.revokedAt)
      fresh.push(r)
    }
    if (fresh.length === 0) return 0
    this.deps.revocation.add(
      fresh.map((r) => ({
        serialNumber: r.serial,
        issuerFingerprint256: this.issuerFingerprint,
        reason: r.revocationReason ?? 'unspecified',
        revokedAt: r.revokedAt ?? 0,
      })),
    )
    this.isCrlStale = true
    // The first sync may bring thousands; the log names a few.
    this.deps.log.info({ count: fresh.length, serials: fresh.slice(0, 20).map((r) => r.serial) }, 'pki: revocations synced')
    return fresh.length
  }

  private async publishCrl(reason: CrlRegenerationReason): Promise<void> {
    const ca = this.ca!
    const entries = [...this.revoked.values()]
    const crlNumber = await nextCrlNumber(this.storage.kv)
    const thisUpdate = Math.floor(this.deps.clock.now() / 1000) * 1000
    const nextUpdate = thisUpdate + this.cfg.crlValidity
    const built = await buildCrl({
      issuerCertPem: ca.intermediate.toString('pem'),
      issuerKey: ca.signer.privateKey,
      revoked: entries,
      crlNumber,
      thisUpdate,
      nextUpdate,
    })
    this.crl = { der: built.der, thisUpdate, nextUpdate }
    this.isCrlStale = false
    this.deps.log.info({ crlNumber: crlNumber.toString(), entries: entries.length, reason, nextUpdate: new Date(nextUpdate).toISOString() }, 'pki: CRL published')
  }

  /** Issues a fresh delegated OCSP signer and swaps the responder to it. */
  private async renewSigner(): Promise<void> {
    const ca = this.ca!
    const issued = await issueCertificate(ca, {
      profile: 'ocsp_signer',
      subject: 'CN=Portcullis OCSP Responder',
      validityMs: OCSP_SIGNER_VALIDITY_MS,
      keyAlgorithm: ca.keyAlgorithm,
      plainKey: true,
      clock: this.deps.clock,
    })
    const responder = createOcspResponder({
      issuerCertPem: ca.intermediate.toString('pem'),
      signerCertPem: issued.certPem,
      signerKey: createPrivateKey(issued.keyPem),
      status: (serial) => this.status(serial),
      clock: this.deps.clock,
      validityMs: this.cfg.ocspValidity,
    })
    const { notBefore, notAfter } = issued.record
    this.signer = { responder, renewAt: notBefore + Math.floor(((notAfter - notBefore) * 2) / 3) }
    this.deps.log.info({ serial: issued.record.serial, notAfter: new Date(notAfter).toISOString() }, 'pki: OCSP signer issued')
  }

  private async status(serial: string): Promise<CertStatusResult> {
    let record: CertificateRecord | undefined
    try {
      record = await this.storage.inventory.get(serial)
    } catch (err) {
      // A serial no inventory row can have (too long) is simply not ours.
      if (err instanceof StorageLimitError) return { status: 'unknown' }
      throw err
    }
    if (!record) return { status: 'unknown' }
    if (record.status === 'revoked') return { status: 'revoked', revokedAt: record.revokedAt ?? 0, reason: record.revocationReason ?? 'unspecified' }
    return { status: 'good' }
  }

  private async tick(): Promise<void> {
    try {
      await this.sync()
    } catch (err) {
      this.deps.log.error({ err: describe(err) }, 'pki: revocation sync failed; retrying on the next tick')
    }
    const now = this.deps.clock.now()
    const reason = this.isCrlStale ? 'revoked' : crlRegenerationReason(this.crl, now)
    if (reason) {
      try {
        await this.publishCrl(reason)
      } catch (err) {
        this.deps.log.error({ err: describe(err), reason }, 'pki: CRL rebuild failed; the previous CRL keeps serving')
      }
    }
    if (this.signer && now >= this.signer.renewAt) {
      try {
        await this.renewSigner()
      } catch (err) {
        this.deps.log.error({ err: describe(err) }, 'pki: OCSP signer renewal failed; retrying on the next tick')
      }
    }
    if (this.cfg.managedCertificates.length > 0 && now >= this.nextManagedCheck) {
      this.nextManagedCheck = now + MANAGED_CHECK_INTERVAL_MS
      await this.checkManaged()
    }
    if (now >= this.nextSightingsFlush) {
      this.nextSightingsFlush = now + SIGHTINGS_FLUSH_INTERVAL_MS
      await this.flushSightings()
    }
  }

  /** Writes the sightings noted since the last flush to the inventory; on failure they are put back for the next one. */
  private async flushSightings(): Promise<void> {
    const sightings = this.deps.sightings
    if (!sightings) return
    const { sightings: taken, dropped } = sightings.take()
    if (dropped > 0) this.deps.log.warn({ dropped }, 'pki: more distinct client certificates than the sightings bound between two flushes; some lastSeenAt updates were skipped')
    if (taken.length === 0) return
    try {
      await this.storage.inventory.markSeen(taken.map(({ serial, at }) => ({ serial, at })))
    } catch (err) {
      sightings.restore(taken)
      this.deps.log.error({ err: describe(err) }, 'pki: writing certificate sightings failed; retrying at the next flush')
    }
  }

  /** Renews what is due (failures are logged inside) and hands the renewed names, and any whose swap failed before, to `onRenewed`. */
  private async checkManaged(): Promise<void> {
    try {
      const { renewed } = await ensureManagedCertificates(this.cfg, { ...this.deps, ca: this.ca!, inventory: this.storage.inventory })
      for (const name of renewed) this.unswapped.add(name)
      // The EST server's certificate may be one of them; it is not part of the gateway's reload.
      if (renewed.length > 0) this.reloadEstCertificate()
    } catch (err) {
      this.deps.log.error({ err: describe(err) }, 'pki: managed certificate check failed; retrying at the next interval')
    }
    if (this.unswapped.size === 0 || !this.deps.onRenewed) return
    const renewed = [...this.unswapped]
    try {
      if ((await this.deps.onRenewed(renewed)) !== false) this.unswapped.clear()
    } catch (err) {
      this.deps.log.error({ err: describe(err), renewed }, 'pki: hot-swapping renewed certificates failed; the previous ones keep serving; retrying at the next interval')
    }
  }

  private reloadEstCertificate(): void {
    try {
      this.est?.reloadCertificate()
    } catch (err) {
      this.deps.log.error({ err: describe(err) }, 'pki: reloading the EST server certificate failed; it keeps serving the previous one')
    }
  }

  private schedule(): void {
    if (this.isClosed) return
    this.timer = setTimeout(() => {
      this.running = this.tick().finally(() => {
        this.running = undefined
        this.schedule()
      })
    }, this.cfg.revocationSync)
    this.timer.unref()
  }

  private listen(host: string, port: number): Promise<void> {
    const now = () => this.deps.clock.now()
    const crlHandlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>()
    for (const path of ['/crl', pathOf(this.ca!.urls.crlUrl)]) {
      if (path && !crlHandlers.has(path)) crlHandlers.set(path, createCrlHttpHandler(() => this.crl, { path, now }))
    }
    // The same CRL PEM-armoured, for operators and tools (docs/operations.md).
    if (!crlHandlers.has('/crl.pem')) crlHandlers.set('/crl.pem', createCrlHttpHandler(() => this.crl, { path: '/crl.pem', now, format: 'pem' }))
    const responder: OcspResponder = (der) => this.signer!.responder(der)
    const ocspHandlers = new Map<string, (req: IncomingMessage, res: ServerResponse) => void>()
    for (const path of ['/ocsp', pathOf(this.ca!.urls.ocspUrl)]) {
      if (!path || crlHandlers.has(path)) continue
      const prefix = path.endsWith('/') ? path : `${path}/`
      if (!ocspHandlers.has(prefix)) ocspHandlers.set(prefix, createOcspHttpHandler(responder, { pathPrefix: prefix }))
    }
    const server = createServer({ requestTimeout: HTTP_TIMEOUT_MS, headersTimeout: HTTP_TIMEOUT_MS, keepAliveTimeout: HTTP_TIMEOUT_MS }, (req, res) => {
      const path = (req.url ?? '').split('?', 1)[0] ?? ''
      const crl = crlHandlers.get(path)
      if (crl) return crl(req, res)
      for (const [prefix, handler] of ocspHandlers) {
        if (path.startsWith(prefix) || `${path}/` === prefix) return handler(req, res)
      }
      res.statusCode = 404
      res.setHeader('Cache-Control', 'no-store')
      res.setHeader('Content-Length', 0)
      res.end()
    })
    this.server = server
    return new Promise((ok, fail) => {
      server.once('error', fail)
      server.listen(port, host, () => {
        server.off('error', fail)
        server.on('error', (err) => this.deps.log.error({ err: describe(err) }, 'pki: HTTP endpoint error'))
        ok()
      })
    })
  }

  close(): Promise<void> {
    this.closing ??= this.closeNow()
    return this.closing
  }

  private async closeNow(): Promise<void> {
    this.isClosed = true
    clearTimeout(this.timer)
    await this.running
    await this.est?.close()
    await this.flushSightings() // what the listeners saw since the last tick
    const server = this.server
    if (server?.listening) {
      await new Promise<void>((done) => {
        server.close(() => done())
        server.closeAllConnections()
      })
    }
    await this.storage.close()
  }
}

/** The path of a URL written into certificates, or undefined ('/' and unparsable URLs are not served). */
function pathOf(url: string | undefined): string | undefined {
  if (!url) return undefined
  try {
    const path = new URL(url).pathname
    return path === '/' ? undefined : path
  } catch {
    return undefined
  }
}
