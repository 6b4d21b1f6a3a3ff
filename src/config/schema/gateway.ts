/** Gateway-wide settings: request hygiene, identity assertion, logging, shutdown. */
import { z } from 'zod'
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
