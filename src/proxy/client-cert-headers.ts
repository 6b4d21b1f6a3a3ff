/**
 * The verified client certificate, told to upstreams in the two formats they
 * understand: RFC 9440 `Client-Cert` / `Client-Cert-Chain` (structured-field
 * byte sequences of the DER), and Envoy's `X-Forwarded-Client-Cert`.
 *
 * An Identity is built once per connection, so each value is computed once per
 * connection too (WeakMap keyed by the Identity object) and requests on a
 * keep-alive connection or HTTP/2 session reuse the strings.
 */
import type { Identity } from './context.js'

/** The identity header values for one certificate. */
export interface ClientCertValues {
  /** RFC 9440 Client-Cert: `:<base64 DER>:`. */
  readonly clientCert: string
  /** RFC 9440 Client-Cert-Chain: `:<b64>:, :<b64>:`; undefined when the client sent no intermediates. */
  readonly clientCertChain: string | undefined
  /** Envoy X-Forwarded-Client-Cert element (without By). */
  readonly xfcc: string
}

const cache = new WeakMap<Identity, ClientCertValues>()

/** The header values for `identity`, computed on first use per Identity object. */
export function clientCertValues(identity: Identity): ClientCertValues {
  let values = cache.get(identity)
  if (values === undefined) {
    values = Object.freeze({
      clientCert: byteSequence(identity.der),
      // RFC 9440 2.3: the chain excludes the end-entity certificate, which identity.chainDer already does.
      clientCertChain: identity.chainDer.length > 0 ? identity.chainDer.map(byteSequence).join(', ') : undefined,
      xfcc: xfccElement(identity),
    })
    cache.set(identity, values)
  }
  return values
}

/** An RFC 8941 byte sequence: base64 with padding between colons. */
function byteSequence(der: Buffer): string {
  return `:${der.toString('base64')}:`
}

/**
 * One XFCC element as Envoy writes it (`Hash=...;Subject="...";URI=...;DNS=...`):
 * keys separated by `;`, a value double-quoted when it holds `,`, `;` or `=`,
 * Subject always quoted. Envoy's rule for a `"` inside a value is `\"`, but
 * Envoy's own parser treats any `\"` as escaped, so a value ending in a
 * backslash would swallow the closing quote and shift every later key into
 * attacker-chosen text. Values holding `"`, `\`, or anything outside
 * printable ASCII are therefore left out (Hash never is); upstreams that need
 * such names should read RFC 9440 Client-Cert, which is unambiguous.
 * `By` (the proxy's own URI SAN) is not sent: Portcullis's server certificate
 * is chosen per SNI and need not carry one.
 */
export function xfccElement(identity: Identity): string {
  const parts = [`Hash=${identity.fingerprint256}`]
  if (isSafeXfccValue(identity.subject)) parts.push(`Subject="${identity.subject}"`)
  for (const uri of identity.san.uri) if (isSafeXfccValue(uri)) parts.push(`URI=${quoteIfNeeded(uri)}`)
  for (const dns of identity.san.dns) if (isSafeXfccValue(dns)) parts.push(`DNS=${quoteIfNeeded(dns)}`)
  return parts.join(';')
}

function isSafeXfccValue(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    if (c < 0x20 || c > 0x7e || c === 0x22 || c === 0x5c) return false
  }
  return true
}

function quoteIfNeeded(s: string): string {
  return s.includes(',') || s.includes(';') || s.includes('=') ? `"${s}"` : s
}
