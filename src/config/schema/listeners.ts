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
 * Per-SNI trust. The verify mode is not per name: OpenSSL fixes it on the
 * connection before the SNI callback runs, so only the anchors can differ.
 */
const trustOverride = z.strictObject({
  serverNames: z.array(hostPattern).min(1).describe('SNI names this trust bundle applies to.'),
  trustBundle: z.array(pemSource).min(1).describe('CA certificates accepted for clients that ask for these names (old and new CA side by side during a rotation).'),
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
