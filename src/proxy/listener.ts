/**
 * A listening TLS socket: HTTP/2 and HTTP/1.1 on one port (ALPN), connection
 * limits, handshake timeout, the client-certificate verdict once per
 * connection, and graceful drain. The server outlives config versions: a
 * reload swaps its certificates and trust in place (setSecureContext and the
 * SNI callback read the current ListenerTls), so established connections are
 * never dropped; only a changed address, port or protocol set needs a new
 * server (see runtime.ts).
 */
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https'
import { createSecureServer, type Http2SecureServer, type ServerHttp2Session } from 'node:http2'
import type { ServerResponse } from 'node:http'
import type { Socket } from 'node:net'
import type { TLSSocket } from 'node:tls'
import type { ListenerConfig } from '../config/schema/listeners.js'
import type { ListenerRuntime } from '../compile.js'
import type { Clock } from '../shared/clock.js'
import type { Logger } from '../shared/log.js'
import type { Denial } from '../shared/reasons.js'
import type { AccessLog } from './access-log.js'
import type { Connection } from './context.js'
import type { ServerRequest, ServerResponseLike } from './forward.js'
import type { CertificateSightings } from './certificate-sightings.js'
import { Http1Deadlines } from './http1-deadlines.js'
import { canonicalSerial, type RevocationSet, type RevokedCertificate } from './revocation-set.js'
import { createRequestHandler } from './handle-request.js'
import { sendRawDenial } from './raw-reply.js'
import { makeSniCallback, rotatingTicketKeys, type TicketKeySource, type TicketKeySourceFactory } from './tls/listener-tls.js'
import { RevocationFollower, type RevocationCheck, type RevocationSubject } from './tls/revocation/listener-revocation.js'
import type { OcspStapler, StapleCallback } from './tls/ocsp-stapling.js'

const kConnection = Symbol('portcullis.connection')
const kAcceptedAt = Symbol('portcullis.acceptedAt')
const kHandshakeTimer = Symbol('portcullis.handshakeTimer')

interface ConnectionState {
  readonly conn: Connection
  readonly denial: Denial | undefined
  /** Set while an external CA's revocation status is awaited; requests wait on it (see settleRevocation). */
  readonly pending?: Promise<void>
  /** What the external-CA revocation check looked at, to check it again when a CRL changes. */
  readonly revocationSubject?: RevocationSubject
}
type TrackedSocket = TLSSocket & {
  [kConnection]?: ConnectionState
  [kAcceptedAt]?: number
  [kHandshakeTimer]?: NodeJS.Timeout
}

/** Finds the state the listener stored for a request's connection (HTTP/1.1 and HTTP/2). */
export function connectionOf(req: ServerRequest): ConnectionState | undefined {
  // For HTTP/2, req.socket is Node's proxy of the session socket; property
  // reads (symbols included) go through to the real TLSSocket.
  return (req.socket as TrackedSocket | null)?.[kConnection]
}

export interface ListenerDeps {
  readonly clock: Clock
  readonly log: Logger
  readonly accessLog: AccessLog
  /** Revoked client certificates, for the process (not per config version). */
  readonly revocation: RevocationSet
  /** Where session-ticket keys come from. Default: a TicketKeyRotator per listener; cluster workers get the primary's shared keys. */
  readonly ticketKeys?: TicketKeySourceFactory
  /** Answers OCSP status requests with the cached staple of the served certificate; without it nothing is stapled. */
  readonly stapler?: OcspStapler
  /** Notes which client certificates are presented, for the inventory's lastSeenAt. */
  readonly sightings?: CertificateSightings
}

/**
 * True when the running listener (config `a`, bound to `boundPort`) can take
 * config `b` in place: only hot-swappable fields differ. Port 0 in `a` means
 * "whatever was bound", so a reload naming the bound port is the same socket.
 */
export function isSameSocket(a: ListenerConfig, boundPort: number, b: ListenerConfig): boolean {
  return a.host === b.host && (a.port === b.port || boundPort === b.port) && a.http2 === b.http2
}

/** One listener's server. Create, `listen()`, `update()` on reload, `close()` to drain. */
export class Listener {
  readonly name: string
  private runtime: ListenerRuntime
  private readonly server: Http2SecureServer | HttpsServer
  private readonly sockets = new Set<TLSSocket>()
  private readonly sessions = new Set<ServerHttp2Session>()
  private readonly tickets: TicketKeySource | undefined
  private readonly deadlines: Http1Deadlines
  private readonly unsubscribeRevocations: () => void
  private readonly externalRevocation = new RevocationFollower(() => this.closeExternallyRevoked())
  private isClosing = false

  constructor(initial: ListenerRuntime, private readonly deps: ListenerDeps) {
    this.name = initial.config.name
    this.runtime = initial
    const cfg = initial.config
    const handle = createRequestHandler(this.name, { ...deps, connectionOf, current: () => this.runtime })
    this.deadlines = new Http1Deadlines(
      () => this.runtime.config.limits,
      (socket, denial) =>
        this.deps.accessLog.handshake({
          listener: this.name,
          clientIp: socket.remoteAddress ?? '',
          clientPort: socket.remotePort ?? 0,
          reason: denial.reason,
          detail: denial.detail,
        }),
    )
    const handler = (req: ServerRequest, res: ServerResponseLike) => {
      if (!('stream' in req)) this.deadlines.onRequest(req, res as ServerResponse)
      // Nothing is handled, let alone forwarded, before an external CA's revocation verdict.
      const pending = connectionOf(req)?.pending
      if (!pending) return handle(req, res)
      // HTTP/2: the stream (its socket proxy throws once the session is gone); HTTP/1.1: the socket.
      void pending.then(() => ('stream' in req ? req.stream.destroyed : req.socket.destroyed) || handle(req, res))
    }
    const tlsOptions = {
      ...initial.tls.serverOptions,
      SNICallback: makeSniCallback(() => this.runtime.tls),
      handshakeTimeout: cfg.tls.handshakeTimeout,
    }
    if (cfg.http2) {
      this.server = createSecureServer(
        {
          ...tlsOptions,
          allowHTTP1: true,
          settings: {
            maxConcurrentStreams: cfg.limits.http2MaxConcurrentStreams,
            maxHeaderListSize: cfg.limits.maxHeaderSize,
            enablePush: false,
          },
          // Pseudo-headers count as pairs; the header-count limit itself is checked per request.
          maxHeaderListPairs: cfg.limits.maxHeadersCount + 8,
        },
        handler,
      )
      this.server.on('session', (session: ServerHttp2Session) => {
        this.sessions.add(session)
        session.once('close', () => this.sessions.delete(session))
        if (this.isClosing) session.close()
      })
    } else {
      this.server = createHttpsServer(tlsOptions, handler)
    }
    this.applyLimits(cfg)
    // Without a listener, Node answers "100 Continue" before any check runs;
    // with it, forward.ts sends it only to an admitted request.
    this.server.on('checkContinue', handler)
    this.server.prependListener('connection', (socket: Socket) => this.onConnection(socket))
    this.server.prependListener('secureConnection', (socket: TLSSocket) => this.onSecureConnection(socket))
    this.server.on('tlsClientError', (err: NodeJS.ErrnoException, socket: TLSSocket) => {
      // With a listener attached, Node leaves the socket open: close it here.
      socket.destroy()
      this.deps.accessLog.handshake({
        listener: this.name,
        clientIp: socket.remoteAddress ?? '',
        clientPort: socket.remotePort ?? 0,
        reason: 'tls_handshake_failed',
        detail: err.code ?? err.message,
      })
    })
    this.server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => this.onClientError(err, socket))
    const stapler = deps.stapler
    if (stapler) {
      // Node asks only when the client sent status_request; the mode is read per handshake, so a reload can turn it off.
      this.server.on('OCSPRequest', (certificate: Buffer, _issuer: Buffer, done: StapleCallback) => {
        if (this.runtime.config.tls.ocspStapling === 'off') done(null)
        else stapler.staple(certificate, done)
      })
    }
    this.unsubscribeRevocations = deps.revocation.subscribe((added) => this.closeRevoked(added))
    this.externalRevocation.follow(initial.revocation)
    this.tickets = cfg.tls.sessionTickets
      ? (deps.ticketKeys ?? rotatingTicketKeys)(this.name, { intervalMs: cfg.tls.ticketKeyRotation, apply: (key) => this.server.setTicketKeys(key) })
      : undefined
  }

  /** Binds and starts accepting. Resolves with the bound port. */
  async listen(): Promise<number> {
    const { host, port } = this.runtime.config
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      this.server.once('error', onError)
      this.server.listen({ host, port }, () => {
        this.server.off('error', onError)
        resolve()
      })
    })
    this.tickets?.start()
    this.deadlines.start()
    const address = this.server.address()
    return typeof address === 'object' && address ? address.port : port
  }

  /** The bound port (after listen). */
  get port(): number {
    const address = this.server.address()
    return typeof address === 'object' && address ? address.port : 0
  }

  /**
   * Takes a new config version in place: certificates and trust for new
   * handshakes, limits for new requests. Established connections keep going.
   */
  update(next: ListenerRuntime): void {
    this.runtime = next
    this.externalRevocation.follow(next.revocation)
    this.server.setSecureContext(next.tls.defaultContextOptions)
    // The new context came with a random ticket key of its own.
    this.tickets?.onContextReplaced()
    this.applyLimits(next.config)
  }

  private applyLimits(cfg: ListenerConfig): void {
    const s = this.server as HttpsServer & Http2SecureServer
    s.maxConnections = cfg.limits.maxConnections
    // HTTP/1.1 (also used by the HTTP/2 server for ALPN http/1.1 clients).
    s.headersTimeout = cfg.limits.headersTimeout
    s.requestTimeout = cfg.limits.requestTimeout
    s.keepAliveTimeout = cfg.limits.keepAliveTimeout
    // Node silently drops headers past maxHeadersCount; we parse them all
    // (bounded by maxHeaderSize) and refuse the request instead (431).
    s.maxHeadersCount = 0
    ;(s as unknown as { maxHeaderSize: number }).maxHeaderSize = cfg.limits.maxHeaderSize
    s.maxRequestsPerSocket = cfg.limits.maxRequestsPerConnection
    if (cfg.http2) {
      // Idle HTTP/2 sessions are closed like idle HTTP/1.1 keep-alive connections.
      s.setTimeout(Math.max(cfg.limits.keepAliveTimeout, cfg.limits.requestTimeout))
      s.updateSettings({ maxConcurrentStreams: cfg.limits.http2MaxConcurrentStreams })
    }
  }

  /**
   * Starts the handshake deadline. Node's own handshakeTimeout is an
   * inactivity timer that a client trickling one byte at a time keeps
   * resetting; this one is absolute, from accept to secureConnection.
   */
  private onConnection(socket: Socket): void {
    const tracked = socket as TrackedSocket
    tracked[kAcceptedAt] = performance.now()
    const timer = setTimeout(() => {
      this.deps.accessLog.handshake({
        listener: this.name,
        clientIp: socket.remoteAddress ?? '',
        clientPort: socket.remotePort ?? 0,
        reason: 'handshake_timeout',
        detail: `no completed handshake within ${this.runtime.config.tls.handshakeTimeout}ms`,
      })
      socket.destroy()
    }, this.runtime.config.tls.handshakeTimeout)
    timer.unref()
    tracked[kHandshakeTimer] = timer
    socket.once('close', () => clearTimeout(timer))
  }

  private onSecureConnection(socket: TLSSocket): void {
    // 'connection' saw the raw TCP socket; Node's TLSSocket keeps it as _parent.
    const raw = ((socket as TLSSocket & { _parent?: Socket })._parent ?? socket) as TrackedSocket
    clearTimeout(raw[kHandshakeTimer])
    this.sockets.add(socket)
    socket.once('close', () => this.sockets.delete(socket))
    const lr = this.runtime
    const verdict = lr.tls.verifyPeer(socket)
    const cipher = socket.getCipher()
    const servername = (socket as TLSSocket & { servername?: string | false }).servername
    const acceptedAt = raw[kAcceptedAt]
    let identity = 'identity' in verdict ? verdict.identity : undefined
    if (identity) this.deps.sightings?.record(identity, this.deps.clock.now())
    // Checked on every connection, resumed ones included: a revocation applies at once, without a reload.
    const revoked = identity && this.deps.revocation.lookup(identity)
    if (revoked) identity = undefined
    // Partners' own CAs (CRL, OCSP): a cached status applies now, an uncached one before the first request.
    const external = identity && 'path' in verdict && verdict.path ? lr.revocation?.check(servername, identity, verdict.path) : undefined
    if (external && 'denial' in external && external.denial) identity = undefined
    const conn: Connection = {
      listener: this.name,
      remoteAddress: socket.remoteAddress ?? '',
      remotePort: socket.remotePort ?? 0,
      // Lowercased and without a trailing dot, the form requestHost() gives the Host.
      serverName: servername ? servername.toLowerCase().replace(/\.$/, '') : undefined,
      tlsVersion: socket.getProtocol() ?? '',
      cipher: cipher?.standardName ?? cipher?.name ?? '',
      alpn: socket.alpnProtocol || 'http/1.1',
      isResumed: socket.isSessionReused(),
      handshakeMs: acceptedAt === undefined ? 0 : performance.now() - acceptedAt,
      identity,
    }
    const externalDenial = external && 'denial' in external ? external.denial : undefined
    const denial = revoked ? revokedDenial(revoked) : externalDenial ?? ('denial' in verdict ? verdict.denial : undefined)
    ;(socket as TrackedSocket)[kConnection] = { conn, denial, revocationSubject: external?.subject }
    if (external && 'pending' in external) this.settleRevocation(socket, external)
    if (conn.alpn !== 'h2') this.deadlines.track(socket)
    if (denial) {
      const peer = socket.getPeerCertificate()
      this.deps.accessLog.handshake({
        listener: this.name,
        clientIp: conn.remoteAddress,
        clientPort: conn.remotePort,
        reason: denial.reason,
        detail: denial.detail,
        subject: peer?.subject ? Object.entries(peer.subject).map(([k, v]) => `${k}=${String(v)}`).join(',') : undefined,
        fingerprint: peer?.fingerprint256?.replace(/:/g, '').toLowerCase(),
        sni: conn.serverName,
      })
      // Without the operator's opt-in, a refused certificate gets no HTTP exchange.
      if (!lr.config.tls.clientAuth.rejectWithProblem) socket.destroy()
    }
  }

  /**
   * Closes the established connections of certificates just revoked. A
   * connection answering every request with a problem (rejectWithProblem) is
   * left alone: it admits nothing already.
   */
  private closeRevoked(added: readonly RevokedCertificate[]): void {
    const serials = new Set(added.map((e) => e.serialNumber))
    for (const socket of this.sockets) {
      const state = (socket as TrackedSocket)[kConnection]
      const identity = state?.conn.identity
      if (!state || !identity || !serials.has(canonicalSerial(identity.serialNumber))) continue
      const entry = this.deps.revocation.lookup(identity)
      if (!entry) continue
      this.deps.accessLog.handshake({
        listener: this.name,
        clientIp: state.conn.remoteAddress,
        clientPort: state.conn.remotePort,
        reason: 'cert_revoked',
        detail: `${revokedDenial(entry).detail}; established connection closed`,
        subject: identity.subject,
        fingerprint: identity.fingerprint256,
        sni: state.conn.serverName,
      })
      socket.destroy()
    }
  }

  /**
   * An external CA's revocation status that was not cached at the handshake:
   * requests wait on `pending` (the handler); a refusal is logged like a
   * refused handshake and closes the connection, or (rejectWithProblem)
   * answers its requests.
   */
  private settleRevocation(socket: TLSSocket, check: Extract<RevocationCheck, { pending: unknown }>): void {
    const tracked = socket as TrackedSocket
    const state = tracked[kConnection]!
    const isProblemAnswer = this.runtime.config.tls.clientAuth.rejectWithProblem
    const pending = check.pending.then((denial) => {
      tracked[kConnection] = denial ? { conn: { ...state.conn, identity: undefined }, denial } : { conn: state.conn, denial: undefined, revocationSubject: check.subject }
      if (!denial || socket.destroyed) return
      this.logRevocationRefusal(state.conn, denial, '')
      if (!isProblemAnswer) socket.destroy()
    })
    tracked[kConnection] = { ...state, pending }
  }

  /** Closes established connections that a new CRL issue (or OCSP answer) of a partner's CA now revokes. */
  private closeExternallyRevoked(): void {
    const revocation = this.runtime.revocation
    if (!revocation) return
    for (const socket of this.sockets) {
      const state = (socket as TrackedSocket)[kConnection]
      if (!state?.revocationSubject || state.denial || state.pending) continue
      const close = (denial: Denial | undefined) => {
        if (!denial || socket.destroyed) return
        this.logRevocationRefusal(state.conn, denial, '; established connection closed')
        socket.destroy()
      }
      const found = revocation.recheck(state.revocationSubject)
      if (found instanceof Promise) void found.then(close)
      else close(found)
    }
  }

  private logRevocationRefusal(conn: Connection, denial: Denial, suffix: string): void {
    this.deps.accessLog.handshake({
      listener: this.name,
      clientIp: conn.remoteAddress,
      clientPort: conn.remotePort,
      reason: denial.reason,
      detail: `${denial.detail ?? ''}${suffix}`,
      subject: conn.identity?.subject,
      fingerprint: conn.identity?.fingerprint256,
      sni: conn.serverName,
    })
  }

  /** HTTP/1.1 parse errors: answer with our problem+json, then close (the framing is unknown). */
  private onClientError(err: NodeJS.ErrnoException, socket: Socket): void {
    // Node also reports failed TLS handshakes here; 'tlsClientError' already logged and closed those.
    if ((socket as TrackedSocket)[kConnection] === undefined) {
      socket.destroy()
      return
    }
    const code = err.code ?? ''
    const reason =
      code === 'HPE_HEADER_OVERFLOW' ? 'header_too_large' : code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'request_timeout' : 'bad_request'
    this.deps.accessLog.handshake({
      listener: this.name,
      clientIp: socket.remoteAddress ?? '',
      clientPort: socket.remotePort ?? 0,
      reason,
      detail: code || err.message,
    })
    sendRawDenial(socket, { reason, detail: code })
  }

  /** Stops accepting new connections (the port is released); existing ones go on. */
  async stopAccepting(): Promise<void> {
    if (!this.server.listening) return
    this.server.close()
    // The listening handle is released on the next turn of the loop.
    await new Promise((resolve) => setImmediate(resolve))
  }

  /**
   * Stops accepting, lets in-flight requests finish (idle keep-alive
   * connections close at once, HTTP/2 sessions get GOAWAY), and destroys what
   * is left after `drainMs`.
   */
  async close(drainMs: number): Promise<void> {
    this.isClosing = true
    this.unsubscribeRevocations()
    this.externalRevocation.close()
    this.tickets?.stop()
    this.deadlines.stop()
    const closed = new Promise<void>((resolve) => {
      if (this.server.listening) this.server.close(() => resolve())
      else if (this.sockets.size === 0 && this.sessions.size === 0) resolve()
      else this.server.once('close', () => resolve())
    })
    const s = this.server as HttpsServer
    s.closeIdleConnections?.()
    for (const session of this.sessions) session.close()
    const timer = setTimeout(() => {
      for (const socket of this.sockets) socket.destroy()
      for (const session of this.sessions) session.destroy()
    }, drainMs)
    timer.unref()
    await closed
    clearTimeout(timer)
  }
}

function revokedDenial(entry: RevokedCertificate): Denial {
  return { reason: 'cert_revoked', detail: `serial ${entry.serialNumber} revoked at ${new Date(entry.revokedAt).toISOString()} (${entry.reason})` }
}
