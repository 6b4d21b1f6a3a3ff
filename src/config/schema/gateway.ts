/** Gateway-wide settings: request hygiene, identity assertion, logging, shutdown, metrics, expiry monitoring. */
import { z } from 'zod'
import { parseDuration } from '../../shared/duration.js'
import { duration, pemSource, secretRef } from './common.js'

export const pathsSchema = z
  .strictObject({
    encodedSlash: z
      .enum(['reject', 'keep'])
      .default('reject')
      .describe('"%2F" or "%5C" in a path: "reject" answers 400 invalid_path; "keep" leaves it encoded (never decoded into a separator). Default: reject.'),
    mergeSlashes: z.boolean().default(true).describe('Collapse "//" into "/". Default: true.'),
  })
  .prefault({})
  .describe('Path normalisation, done once so routing and the upstream see the same path. Dot segments are always resolved and percent-encoding of unreserved characters decoded (RFC 3986 6.2.2).')

export const identityAssertionSchema = z
  .strictObject({
    issuer: z.string().min(1).describe('`iss` of the assertion.'),
    audience: z.string().optional().describe('`aud`. Default: the upstream name.'),
    key: pemSource.optional().describe('EC P-256 private key (PKCS#8) to sign with. Default: a key generated at start (rotates on restart).'),
    passphrase: secretRef.optional(),
    ttl: duration('60s', 'Lifetime of each assertion.'),
    jwksPath: z
      .string()
      .startsWith('/')
      .default('/.well-known/portcullis/jwks.json')
      .describe('Path on every listener where the public JWKS is served, without client-certificate requirement beyond the listener mode. Default: /.well-known/portcullis/jwks.json.'),
  })
  .describe('A JWT signed by the gateway, telling the upstream who called (sub = SPIFFE id or subject, x5t#S256 = certificate fingerprint).')

export const accessLogSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Default: true.'),
    path: z.string().optional().describe('File to append JSON lines to. Default: standard output.'),
  })
  .prefault({})

export const shutdownSchema = z
  .strictObject({
    drainTimeout: duration('30s', 'On SIGTERM or reload, how long old connections may finish in-flight requests before they are closed.'),
  })
  .prefault({})

export const metricsSchema = z
  .strictObject({
    host: z.string().default('127.0.0.1').describe('Address to bind. Metrics name partners, certificates and upstreams: expose them beyond the host deliberately. Default: 127.0.0.1.'),
    port: z.number().int().min(0).max(65535).describe('TCP port of the plain-HTTP metrics endpoint.'),
    path: z.string().startsWith('/').default('/metrics').describe('Path Prometheus scrapes. Default: /metrics.'),
  })
  .describe('Prometheus metrics endpoint (text format; process metrics plus `portcullis_*`, see docs/operations.md "Metrics"). Off unless set; applies at start (a reload that changes it logs a warning).')

/** A threshold like "30d": a positive duration, kept in ms. */
const expiryThreshold = z
  .string()
  .refine((t) => (parseDuration(t) ?? 0) > 0, { message: 'expected a positive duration like "30d", "7d" or "12h"' })
  .transform((t) => parseDuration(t)!)

/** `https:` or `http:` without credentials: the URL is named (by origin) in logs. */
function isWebhookUrl(text: string): boolean {
  try {
    const u = new URL(text)
    return (u.protocol === 'https:' || u.protocol === 'http:') && u.username === '' && u.password === '' && u.hash === ''
  } catch {
    return false
  }
}

/** Shortest webhook HMAC key accepted (256 bits of hex or base64 text is longer); checked at load by check.ts. */
export const minWebhookSecretLength = 32

export const expiryMonitoringSchema = z
  .strictObject({
    enabled: z.boolean().default(true).describe('Watch every certificate the gateway serves, presents or trusts, and the built-in CA\'s (metrics and log warnings). Default: true.'),
    thresholds: z
      .array(expiryThreshold)
      .min(1)
      .max(10)
      .transform((list) => [...new Set(list)].sort((a, b) => b - a)) // largest first, as the monitor walks them
      .prefault(['30d', '7d', '1d'])
      .describe('Time left before notAfter at which a certificate is announced (a log warning and a webhook call, once per certificate and threshold; an error once it expired). Default: [30d, 7d, 1d].'),
    interval: duration('1h', 'How often the certificates are checked (a reload is checked within seconds). Metric values are computed at each scrape.').refine((ms) => ms >= 1000, {
      message: 'expected at least 1s',
    }),
    webhook: z
      .strictObject({
        url: z.string().refine(isWebhookUrl, { message: 'expected an http:// or https:// URL without user:password@ or #fragment' }).describe('Where events are POSTed as JSON. https uses the system trust store.'),
        secret: secretRef.describe('HMAC-SHA256 key (at least ' + minWebhookSecretLength + ' characters) for the `X-Portcullis-Signature` header; see docs/operations.md "Expiry monitoring".'),
        timeout: duration('5s', 'Per attempt, connect to response.'),
        retries: z.number().int().min(0).max(10).default(3).describe('Further attempts after a network error, a 408, 429 or 5xx answer, with jittered backoff doubling up to 1 s, 2 s, 4 s... Default: 3.'),
      })
      .optional()
      .describe('Also POST each announcement to this URL, signed. Off unless set.'),
  })
  .prefault({})
  .describe('Certificate expiry monitoring: `portcullis_certificate_expiry_seconds`, log warnings at thresholds, optional webhook (docs/operations.md, "Expiry monitoring").')
