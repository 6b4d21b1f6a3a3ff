/**
 * The typed state a request carries through the pipeline. No string-keyed bag:
 * every field a stage may read is named here, with who sets it.
 */
import type { Denial } from '../shared/reasons.js'

/**
 * A verified client certificate, parsed once per connection (never per request).
 * All hex strings are lowercase without separators.
 */
export interface Identity {
  /** Subject DN in RFC 4514 form (last RDN first, as `openssl x509 -nameopt RFC2253` prints it), e.g. "CN=a,O=Acme". */
  readonly subject: string
  /** Subject attributes by short name (CN, O, OU, C, ...); each may repeat. */
  readonly subjectFields: Readonly<Record<string, readonly string[]>>
  /** Issuer DN, same form as `subject`. */
  readonly issuer: string
  /** Serial number, lowercase hex without leading zeros stripped beyond what the cert holds. */
  readonly serialNumber: string
  /** SHA-256 of the DER certificate. */
  readonly fingerprint256: string
  /** SHA-256 of the issuing CA's DER certificate, when the verified chain has it. */
  readonly issuerFingerprint256?: string
  readonly san: {
    readonly dns: readonly string[]
    readonly uri: readonly string[]
    readonly email: readonly string[]
    readonly ip: readonly string[]
  }
  /** The one `spiffe://` URI SAN, when there is exactly one. */
  readonly spiffeId?: string
  /** Validity bounds, ms since epoch. */
  readonly notBefore: number
  readonly notAfter: number
  /** DER of the leaf, for RFC 9440 Client-Cert. */
  readonly der: Buffer
  /** DER of the intermediates the client sent (leaf excluded, anchor excluded). */
  readonly chainDer: readonly Buffer[]
}

/** Who the request acts as, set by authn. Later stages read it here, never from a header. */
export type Principal =
  | { readonly kind: 'mtls'; readonly identity: Identity; readonly names: readonly string[] }
  | { readonly kind: 'anonymous' }

/** Per-connection facts, computed once at `secureConnection`. */
export interface Connection {
  /** Name of the listener that accepted the connection. */
  readonly listener: string
  readonly remoteAddress: string
  readonly remotePort: number
  /** SNI the client sent, lowercased; undefined when none. */
  readonly serverName: string | undefined
  readonly tlsVersion: string
  readonly cipher: string
  readonly alpn: string
  /** TLS session was resumed (ticket or session id). */
  readonly isResumed: boolean
  /** Handshake duration in ms (socket accepted → secureConnection). */
  readonly handshakeMs: number
  /** The verified peer certificate; undefined when none was presented (optional/none modes). */
  readonly identity: Identity | undefined
}

/**
 * One request's state. Fields are filled in pipeline order; a stage only reads
 * what an earlier stage set (see STAGE_ORDER in pipeline.ts).
 */
export interface RequestContext {
  /** Request id: a valid incoming X-Request-Id, or one we made. */
  readonly id: string
  /** From the injected Clock, ms since epoch. */
  readonly receivedAt: number
  readonly conn: Connection
  readonly method: string
  /** Host without port, lowercased (HTTP/1 Host or HTTP/2 :authority). */
  readonly host: string
  /** Normalised path, the one routing and the upstream both see. */
  readonly path: string
  /** Query string without the leading '?', passed through unchanged; '' when none. */
  readonly query: string
  /** Path parameters captured by the route pattern. */
  params: Readonly<Record<string, string>>
  /** Set by authn. */
  principal?: Principal
}

/** Lets the request go on (undefined) or answers it (a Denial). Built per route at compile time. */
export type Stage = (ctx: RequestContext) => Denial | undefined | Promise<Denial | undefined>
