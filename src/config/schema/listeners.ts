/** `listeners:` — where Portcullis accepts connections, and how it terminates TLS. */
import { z } from 'zod'
import { defaultCipherList } from '../../shared/tls-ciphers.js'
import { cidr, duration, hostPattern, name, pemSource, secretRef, size } from './common.js'

const serverCertificate = z.strictObject({
  serverNames: z
    .array(hostPattern)
    .default([])
    .describe('SNI names this certificate answers for ("*.example.com" allowed). The first certificate is the default for unknown or absent SNI. Default: [].'),
  cert: pemSource.describe('Certificate chain (leaf first).'),
  key: pemSource.describe('Private key (PKCS#8, PKCS#1 or SEC1 PEM).'),
  passphrase: secretRef.optional().describe('Passphrase of an encrypted key.'),
})

/**
 * Revocation checking for client certificates under one trust bundle, for
 * partners' own CAs (src/proxy/tls/revocation/). Absent: no CRL or OCSP
 * checking, as before. The unit is the trust bundle, not the identity:
 * identities are matched after the handshake, and how a CA publishes
 * revocation (and how much its outages may cost) is a property of the CA.
 */
const revocation = z
  .strictObject({
    crlFiles: z
      .array(z.strictObject({ file: z.string().min(1).describe('Path to a CRL file (PEM or DER), relative to the config file.') }))
      .default([])
      .describe('CRL files (PEM, several CRLs per file allowed, or DER), re-read on every reload. Each applies to the CA that signed it: a trust anchor, or an intermediate met in a client chain. Default: [].'),
    crlDistributionPoints: z
      .boolean()
      .default(true)
      .describe('Fetch CRLs over HTTP(S) from the CRL distribution points named in client certificates (and their intermediates), cache them and refresh them before nextUpdate. Default: true.'),
    ocsp: z.boolean().default(true).describe('Ask the OCSP responder named in a client certificate\'s Authority Information Access about it. Default: true.'),
    prefer: z
      .enum(['ocsp', 'crl'])
      .default('ocsp')
      .describe('Which source is asked first about a leaf certificate; the other is the fallback when the first has no answer. A CRL already loaded that lists the certificate revokes it whatever this says. Default: ocsp.'),
    scope: z
      .enum(['chain', 'leaf'])
      .default('chain')
      .describe('"chain": the leaf and every intermediate CA are checked (the anchor is not: trust in it is configuration); an intermediate needs a CRL (distribution point or file), since OCSP is asked about leaves only. "leaf": the leaf only. Default: chain.'),
    failMode: z
      .enum(['hard', 'soft'])
      .default('hard')
      .describe('When no source gives a current answer (responder down, CRL expired or unreachable, no source named): "hard" refuses the connection with cert_revocation_unknown; "soft" admits it, logs the cause once and counts portcullis_revocation_soft_fail_total. A certificate known to be revoked is refused in both modes. Default: hard.'),
    fetchTimeout: duration('5s', 'Bound on one CRL download or OCSP exchange (connect, headers, body). A connection waits at most this long per source before its first request is processed.'),
    maxCrlSize: size('16MiB', 'Largest CRL accepted, downloaded or from a file.'),
    refreshBeforeNextUpdate: duration('1h', 'A cached CRL is fetched again this long before its nextUpdate (halfway to it when that is sooner), in the background.'),
    crlRefreshInterval: duration('1h', 'How often a CRL without nextUpdate is fetched again; it counts as current for one interval after each fetch.'),
    cacheOcspFor: duration('1h', 'Longest time an OCSP answer is reused; a responder\'s nextUpdate shortens it.'),
  })

/**
 * Per-SNI trust. The verify mode is not per name: OpenSSL fixes it on the
 * connection before the SNI callback runs, so only the anchors can differ.
 */
const trustOverride = z.strictObject({
  serverNames: z.array(hostPattern).min(1).describe('SNI names this trust bundle applies to.'),
  trustBundle: z.array(pemSource).min(1).describe('CA certificates accepted for clients that ask for these names (old and new CA side by side during a rotation).'),
  revocation: revocation.optional().describe('Revocation checking (CRL, OCSP) for clients verified by this trust bundle. Not inherited from clientAuth.revocation. Absent: none.'),
})

const clientAuth = z
  .strictObject({
    mode: z
      .enum(['required', 'optional', 'none'])
      .default('required')
      .describe('"required": a verified client certificate is needed to finish the handshake. "optional": a certificate is asked for; without one the connection is anonymous and routes decide. A presented certificate that fails verification is refused in every mode. "none": no certificate is asked for. Default: required.'),
    trustBundle: z
      .array(pemSource)
      .default([])
      .describe('CA certificates (anchors) that client certificates must chain to. Required unless mode is "none". Default: [].'),
    perServerName: z.array(trustOverride).default([]).describe('Trust bundles per SNI name, so partners anchored on different CAs are kept apart. Default: [].'),
    rejectWithProblem: z
      .boolean()
      .default(false)
      .describe('On a refused client certificate, finish the handshake and answer every request with a problem+json 401/403 naming the reason, instead of closing the connection. Default: false.'),
    maxChainDepth: z.number().int().min(1).max(10).default(4).describe('Longest accepted chain, leaf to anchor. Default: 4.'),
    maxLeafValidity: duration('398d', 'Longest accepted total lifetime (notAfter - notBefore) of a client certificate; longer ones are refused with cert_validity_too_long.'),
    revocation: revocation.optional().describe('Revocation checking (CRL, OCSP) of client certificates verified by `trustBundle`, for a partner\'s own CA. perServerName entries have their own. Absent: none.'),
  })
  .prefault({})

const tls = z.strictObject({
  certificates: z.array(serverCertificate).min(1).describe('Server certificates, chosen by SNI.'),
  unknownServerName: z
    .enum(['default', 'reject'])
    .default('default')
    .describe('Client sends an SNI no certificate names, or none: "default" serves the first certificate; "reject" fails the handshake. Default: default.'),
  minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.3').describe('Lowest TLS version accepted. Default: TLSv1.3.'),
  ciphers: z.string().default(defaultCipherList).describe('OpenSSL cipher list. Default: TLS 1.3 suites and ECDHE with AEAD (GCM, ChaCha20-Poly1305) for TLS 1.2.'),
  ecdhCurves: z.string().default('X25519:P-256:P-384').describe('Key-exchange groups in preference order. Default: X25519:P-256:P-384.'),
  clientAuth: clientAuth.describe('Client-certificate verification: mode, trust anchors (per listener and per SNI name), and how refusals are answered.'),
  handshakeTimeout: duration('10s', 'A connection that has not finished its handshake by then is closed.'),
  sessionTickets: z.boolean().default(true).describe('Issue TLS session tickets for resumption. Resumed sessions are re-checked (expiry, current trust) as full handshakes. A listener that allows TLS 1.2 and has perServerName trust issues none: a resumed TLS 1.2 session carries no server name to check. Default: true.'),
  ticketKeyRotation: duration('1h', 'How often session-ticket keys are replaced; older tickets stop resuming.'),
  sessionTimeout: duration('5m', 'Lifetime of a session for resumption.'),
  ocspStapling: z
    .enum(['auto', 'off'])
    .default('auto')
    .describe('OCSP stapling of the server certificates. "auto": a certificate whose AIA names an http(s) OCSP responder, and whose file holds its issuer after it, gets a verified `good` response fetched in the background and refreshed at half its validity; nothing is stapled while none is current (a handshake never waits on the responder beyond 500 ms for a certificate\'s very first response). "off": never staple; refused for a certificate with the TLS Feature "must-staple" extension. Default: auto.'),
})

const limits = z
  .strictObject({
    maxConnections: z.number().int().positive().default(10000).describe('Open connections per listener; more are closed at accept. Default: 10000.'),
    headersTimeout: duration('10s', 'Time to receive a request\'s complete headers (slowloris guard).'),
    requestTimeout: duration('60s', 'Time to receive a complete request, body included.'),
    keepAliveTimeout: duration('5s', 'Idle time before a keep-alive connection is closed.'),
    maxHeadersCount: z.number().int().positive().default(100).describe('Most request header fields. Default: 100.'),
    maxHeaderSize: size('16KiB', 'Largest request header block (HTTP/1.1: the request head; HTTP/2: the header list).'),
    http2MaxConcurrentStreams: z.number().int().positive().default(100).describe('HTTP/2 streams open at once per connection. Default: 100.'),
    maxRequestsPerConnection: z.number().int().nonnegative().default(0).describe('Requests served per connection before it is closed; 0 = unlimited. Default: 0.'),
  })
  .prefault({})

export const listenerSchema = z.strictObject({
  name: name.describe('Listener name, used by routes and logs.'),
  host: z.string().default('127.0.0.1').describe('Address to bind ("::" for all IPv6 and IPv4). Default: 127.0.0.1.'),
  port: z.number().int().min(0).max(65535).describe('TCP port; 0 picks a free one (tests).'),
  http2: z.boolean().default(true).describe('Offer HTTP/2 by ALPN beside HTTP/1.1. Default: true.'),
  tls: tls.describe('TLS termination: server certificates by SNI, versions and ciphers, client-certificate verification, sessions.'),
  limits: limits.describe('Connection and request limits against slowloris and floods. Header limits are per listener because headers are parsed before a route is known.'),
  trustedProxies: z.array(cidr).default([]).describe('Peers whose X-Forwarded-For is kept and extended; from anyone else it is replaced. Default: [] (trust nobody).'),
})
export type ListenerConfig = z.infer<typeof listenerSchema>

export const listenersSchema = z.array(listenerSchema).min(1).describe('Listeners. At least one.')
