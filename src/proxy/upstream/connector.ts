/**
 * The connect function of one upstream: TCP, or TLS with our client
 * certificate, CA, SNI, minimum version and SPKI pins. Built once at compile
 * time; every PEM is parsed here, so a bad key or CA is a config issue at
 * `upstreams.<name>.tls.*`, never a failure on the first request.
 *
 * Decisions:
 * - One SecureContext per upstream, shared by every connection: PEM is
 *   parsed once, not per handshake.
 * - The SNI (and the name verified) is fixed per upstream: `tls.serverName`,
 *   or the target's host name, or none for an IP target (verified against the
 *   IP SAN). undici would otherwise derive it from the request's Host header,
 *   which the client chooses when hostHeader is "preserve".
 * - Chain and name are always verified (`rejectUnauthorized`); there is no
 *   switch to turn that off.
 * - TLS 1.2 offers only ECDHE key exchange with AEAD ciphers, as the listeners do.
 * - SPKI pins are checked on the leaf, after chain and name verification
 *   (as Envoy's `verify_certificate_spki`). A resumed TLS session skips the
 *   check (Node verifies only full handshakes); resumption is possible only
 *   with a server that completed a pinned handshake with us before.
 */
import { createHash, createPrivateKey, X509Certificate } from 'node:crypto'
import type { Socket } from 'node:net'
import { checkServerIdentity, createSecureContext, type PeerCertificate, type SecureContext } from 'node:tls'
import { buildConnector } from 'undici'
import { ConfigError } from '../../config/issues.js'
import { readPem, readSecret, SourceError, type SourceContext } from '../../config/secrets.js'
import type { UpstreamConfig } from '../../config/schema/upstreams.js'
import { TLS12_CIPHERS } from '../../shared/tls-ciphers.js'
import { PIN_MISMATCH_CODE } from './classify.js'

/** TLS 1.2 suites offered to upstreams; TLS 1.3 suites are OpenSSL's defaults (all AEAD). */
const TLS12_CIPHER_LIST = TLS12_CIPHERS.join(':')

type TlsConfig = NonNullable<UpstreamConfig['tls']>
type Path = readonly (string | number)[]

/** A connect function for undici plus the SNI each target must dispatch with. */
export interface UpstreamConnector {
  readonly connect: buildConnector.connector
  /** The SNI constant for a target host name (see module doc). */
  servernameFor(hostname: string): string
}

/**
 * The SPKI pin of a certificate: base64 SHA-256 of its DER
 * SubjectPublicKeyInfo. Computed from the DER certificate, not from
 * `PeerCertificate.pubkey`, which Node fills with the bare EC point (not an
 * SPKI) for EC keys.
 */
export function spkiPin(cert: PeerCertificate): string | undefined {
  if (!cert.raw) return undefined
  const spki = new X509Certificate(cert.raw).publicKey.export({ type: 'spki', format: 'der' })
  return createHash('sha256').update(spki).digest('base64')
}

/**
 * undici lets a later "other side closed" overwrite the TLS alert that caused
 * it (a server refusing our client certificate in TLS 1.3 sends its alert
 * after the handshake, then closes). Destroying the socket on the alert keeps
 * the first error, so the request fails with the TLS code.
 */
function keepTlsAlert(this: Socket, err: NodeJS.ErrnoException): void {
  if (typeof err.code === 'string' && err.code.startsWith('ERR_SSL_')) this.destroy()
}

/** Wraps Node's name check with a pin check; fails closed when the certificate carries no key. */
function pinnedIdentityCheck(pins: ReadonlySet<string>) {
  return (host: string, cert: PeerCertificate): Error | undefined => {
    const nameError = checkServerIdentity(host, cert)
    if (nameError) return nameError
    const pin = spkiPin(cert)
    if (pin !== undefined && pins.has(pin)) return undefined
    return Object.assign(new Error(`upstream certificate key is not among the configured SPKI pins (got ${pin ?? 'none'})`), {
      code: PIN_MISMATCH_CODE,
    })
  }
}

/** Runs one loading step; any failure becomes a ConfigError at `path` naming only the error code, never key material. */
function load<T>(path: Path, what: string, step: () => T): T {
  try {
    return step()
  } catch (err) {
    if (err instanceof ConfigError) throw err
    // SourceError messages name the file or variable only; crypto errors are reduced to their code.
    const e = err as NodeJS.ErrnoException
    const message = err instanceof SourceError ? e.message : `cannot load ${what}: ${e.code ?? e.name}`
    throw new ConfigError([{ path, message }])
  }
}

function buildSecureContext(tls: TlsConfig, base: Path, source: SourceContext): SecureContext {
  const ca = tls.ca?.map((ref, i) =>
    load([...base, 'ca', i], 'CA certificate', () => {
      const text = readPem(ref, source)
      new X509Certificate(text) // throws on a malformed first certificate
      createSecureContext({ ca: text }) // and on a malformed one after it
      return text
    }),
  )
  let cert: string | undefined
  let key: string | undefined
  let passphrase: string | undefined
  if (tls.cert && tls.key) {
    const certText = load([...base, 'cert'], 'client certificate', () => readPem(tls.cert!, source))
    const x509 = load([...base, 'cert'], 'client certificate', () => new X509Certificate(certText))
    passphrase = tls.passphrase ? load([...base, 'passphrase'], 'passphrase', () => readSecret(tls.passphrase!, source)) : undefined
    const keyText = load([...base, 'key'], 'client key', () => readPem(tls.key!, source))
    const keyObject = load([...base, 'key'], 'client key (wrong or missing passphrase?)', () =>
      createPrivateKey({ key: keyText, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) }),
    )
    if (!x509.checkPrivateKey(keyObject)) {
      throw new ConfigError([{ path: [...base, 'key'], message: 'the client key does not match tls.cert' }])
    }
    cert = certText
    key = keyText
  }
  return load(base, 'TLS settings', () =>
    createSecureContext({ ca, cert, key, passphrase, minVersion: tls.minVersion, ciphers: TLS12_CIPHER_LIST }),
  )
}

/**
 * Builds the connector for an upstream. Throws ConfigError with paths under
 * `['upstreams', name, 'tls']` when PEM material cannot be read or does not fit.
 */
export function buildUpstreamConnector(name: string, cfg: UpstreamConfig, source: SourceContext): UpstreamConnector {
  const isTls = cfg.targets.some((t) => t.url.startsWith('https:'))
  if (!isTls) {
    const plain = buildConnector({ timeout: cfg.connectTimeout, keepAlive: true })
    return { connect: plain, servernameFor: (hostname) => hostname }
  }
  const tls = cfg.tls ?? { spkiPins: [], minVersion: 'TLSv1.2' as const }
  const secureContext = buildSecureContext(tls, ['upstreams', name, 'tls'], source)
  const pins = tls.spkiPins.length > 0 ? new Set(tls.spkiPins) : undefined
  const connectTls = buildConnector({
    secureContext,
    rejectUnauthorized: true,
    ...(pins ? { checkServerIdentity: pinnedIdentityCheck(pins) } : {}),
    timeout: cfg.connectTimeout,
    keepAlive: true,
    maxCachedSessions: 100,
  })
  // Per connection, not per request: force our SNI whatever undici carried over from the request.
  // '' makes undici fall back to the URL host, which it leaves unset for an IP address.
  const sni = tls.serverName ?? ''
  const connect: buildConnector.connector = (opts, callback) =>
    connectTls({ ...opts, servername: sni }, (err, socket) => {
      if (socket) socket.on('error', keepTlsAlert)
      ;(callback as (e: Error | null, s: Socket | null) => void)(err, socket)
    })
  return { connect, servernameFor: (hostname) => tls.serverName ?? hostname }
}
