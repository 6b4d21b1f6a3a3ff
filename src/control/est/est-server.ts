/**
 * The EST enrollment server (RFC 7030) of the built-in CA, started by the
 * PKI service when `pki.est` is set: partners and devices get their first
 * certificate with a one-time token, then renew it themselves over mTLS, so
 * certificates can live hours or days. This file is the TLS server and its
 * lifecycle; `est-handler.ts` is what happens to each request.
 *
 * Decisions:
 * - HTTPS only (RFC 7030 §3.2), on its own port: TLS 1.2+ with the gateway's
 *   cipher policy, no renegotiation, no compression, no session resumption
 *   (every request re-judges the client anyway).
 * - The handshake asks for a client certificate but does not require one —
 *   a new device has none — and OpenSSL's verdict is ignored:
 *   `est-client-cert.ts` judges a presented certificate itself (issued by
 *   this CA, valid by the injected clock, recorded and not revoked). The CA
 *   certificates are passed to TLS only to name acceptable issuers.
 * - Limits: `requestTimeout` for the handshake and for each request's
 *   headers and body (checked every 500 ms, not Node's 30 s), 64 KiB
 *   bodies, 16 KiB of headers, 50 header fields, `maxConnections`.
 * - Partner policies are compiled once at start, with the same mapping as
 *   `portcullis ca sign` (`partnerPolicyOf` in pki/policy.ts): a bad policy fails the start.
 *   Like the rest of `pki:`, they change at the next restart.
 * - Closing waits for requests in flight, so none touches storage after the
 *   PKI service closes it.
 */
import { constants } from 'node:crypto'
import { createServer, type Server } from 'node:https'
import type { AddressInfo } from 'node:net'
import type { PkiConfig } from '../../config/schema/index.js'
import { readPem, readSecret, type SourceContext } from '../../config/secrets.js'
import type { LoadedCa } from '../../pki/ca-load.js'
import { compilePartnerPolicy, partnerPolicyOf, type CompiledPartnerPolicy } from '../../pki/policy.js'
import type { Clock } from '../../shared/clock.js'
import type { Logger } from '../../shared/log.js'
import { defaultCipherList } from '../../shared/tls-ciphers.js'
import type { CertificateInventory, KeyValueStore } from '../../storage/types.js'
import { EstHandler } from './est-handler.js'

/** The `pki.est` section. */
export type EstConfig = NonNullable<PkiConfig['est']>

/** What the server needs from the PKI service. */
export interface EstServerDeps {
  readonly ca: LoadedCa
  readonly inventory: CertificateInventory
  readonly kv: KeyValueStore
  readonly partners: PkiConfig['partners']
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
}

/** A listening EST server. */
export interface EstServer {
  /** Bound port (useful with port 0). */
  readonly port: number
  /** Re-reads `tls.cert`/`tls.key` (a renewed managed certificate); new handshakes get them. Throws when unreadable. */
  reloadCertificate(): void
  /** Stops accepting, closes connections, waits for requests in flight, stops pruning tokens. */
  close(): Promise<void>
}

/** How often used and long-expired tokens are deleted (real time; expiry itself is judged by the clock). */
const PRUNE_INTERVAL_MS = 3_600_000
const KEEP_ALIVE_MS = 5000
/** Node checks `headersTimeout` and `requestTimeout` only this often (its default is 30 s). */
const DEADLINE_CHECK_MS = 500

function tlsOptions(est: EstConfig, ca: LoadedCa, source: SourceContext) {
  return {
    cert: readPem(est.tls.cert, source),
    key: readPem(est.tls.key, source),
    ...(est.tls.passphrase ? { passphrase: readSecret(est.tls.passphrase, source) } : {}),
    ca: [ca.intermediate.toString('pem'), ca.root.toString('pem')],
    minVersion: est.tls.minVersion,
    ciphers: defaultCipherList,
    secureOptions: constants.SSL_OP_NO_RENEGOTIATION | constants.SSL_OP_NO_COMPRESSION | constants.SSL_OP_CIPHER_SERVER_PREFERENCE | constants.SSL_OP_NO_TICKET,
  }
}

/** Starts the server; rejects when a policy is invalid, the certificate unreadable or the port taken. */
export async function startEstServer(est: EstConfig, deps: EstServerDeps): Promise<EstServer> {
  const policies = new Map<string, CompiledPartnerPolicy>()
  for (const [name, partner] of Object.entries(deps.partners)) policies.set(name, compilePartnerPolicy(partnerPolicyOf(name, partner)))
  const handler = new EstHandler({ ...deps, policies })
  const inFlight = new Set<Promise<void>>()
  const server = createServer(
    {
      ...tlsOptions(est, deps.ca, deps.source),
      requestCert: true,
      rejectUnauthorized: false,
      handshakeTimeout: est.requestTimeout,
      requestTimeout: est.requestTimeout,
      headersTimeout: est.requestTimeout,
      keepAliveTimeout: KEEP_ALIVE_MS,
      connectionsCheckingInterval: DEADLINE_CHECK_MS,
      maxHeaderSize: 16 * 1024,
    },
    (req, res) => {
      const handling = handler.handle(req, res).finally(() => inFlight.delete(handling))
      inFlight.add(handling)
    },
  )
  server.maxConnections = est.maxConnections
  server.maxHeadersCount = 50
  server.on('tlsClientError', (err) => deps.log.debug({ err: err.message }, 'est: TLS handshake failed'))
  await new Promise<void>((ok, fail) => {
    server.once('error', fail)
    server.listen(est.port, est.host, () => {
      server.off('error', fail)
      server.on('error', (err) => deps.log.error({ err: err.message }, 'est: server error'))
      ok()
    })
  })

  let pruning: Promise<unknown> = Promise.resolve()
  const prune = () => {
    pruning = handler.tokens.prune(deps.clock.now()).then(
      (count) => count > 0 && deps.log.info({ count }, 'est: pruned expired enrollment tokens'),
      (err: unknown) => deps.log.error({ err: String(err) }, 'est: pruning enrollment tokens failed; retrying in an hour'),
    )
  }
  prune()
  const timer = setInterval(prune, PRUNE_INTERVAL_MS)
  timer.unref()

  return {
    port: (server.address() as AddressInfo).port,
    reloadCertificate: () => server.setSecureContext(tlsOptions(est, deps.ca, deps.source)),
    close: async () => {
      clearInterval(timer)
      await closeServer(server)
      await Promise.all([pruning, ...inFlight])
    },
  }
}

function closeServer(server: Server): Promise<void> {
  if (!server.listening) return Promise.resolve()
  return new Promise((done) => {
    server.close(() => done())
    server.closeAllConnections()
  })
}
