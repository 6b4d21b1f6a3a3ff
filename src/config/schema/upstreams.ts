/** `upstreams:` — the services routes forward to, and how Portcullis talks to them. */
import { z } from 'zod'
import { duration, name, pemSource, secretRef } from './common.js'

/** Credentials would leak into access logs; a query or fragment has no meaning as a base. */
function isPlainBaseUrl(text: string): boolean {
  try {
    const u = new URL(text)
    return u.username === '' && u.password === '' && u.search === '' && u.hash === '' && !text.includes('?') && !text.includes('#')
  } catch {
    return false
  }
}

const target = z.strictObject({
  url: z
    .string()
    .url()
    .refine((u) => /^https?:\/\//.test(u), { message: 'expected an http:// or https:// URL' })
    .refine(isPlainBaseUrl, { message: 'expected no user:password@, ?query or #fragment in a target URL' })
    .describe('Base URL: scheme, host, port, and an optional path prefix prepended to every forwarded path. No credentials, query or fragment (the URL appears in logs).'),
  weight: z.number().int().min(1).max(100).default(1).describe('Relative share of requests (round_robin). Default: 1.'),
})

const upstreamTls = z
  .strictObject({
    ca: z.array(pemSource).optional().describe('CA certificates to verify the upstream with. Default: the system store.'),
    cert: pemSource.optional().describe('Client certificate for mTLS to the upstream.'),
    key: pemSource.optional().describe('Client key for mTLS to the upstream.'),
    passphrase: secretRef.optional().describe('Passphrase of an encrypted client key.'),
    serverName: z.string().optional().describe('SNI and name to verify. Default: the target host.'),
    spkiPins: z
      .array(z.string().regex(/^[A-Za-z0-9+/]{43}=$/, 'expected base64 SHA-256 of the SubjectPublicKeyInfo'))
      .default([])
      .describe('Accept only upstream certificates whose SPKI SHA-256 (base64) is listed, in addition to chain verification. Default: [].'),
    minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Default: TLSv1.2.'),
  })
  .refine((t) => (t.cert === undefined) === (t.key === undefined), { message: 'cert and key go together' })

const passiveHealth = z
  .strictObject({
    consecutiveFailures: z.number().int().min(1).default(5).describe('Failures in a row (connect errors, resets, timeouts, 502-504 answers) before a target is ejected. Default: 5.'),
    ejectFor: duration('30s', 'How long an ejected target gets no traffic.'),
  })
  .prefault({})

const activeHealth = z.strictObject({
  path: z.string().startsWith('/').default('/healthz').describe('Path probed with GET on each target\'s origin (the target URL\'s path prefix is not added). Default: /healthz.'),
  interval: duration('10s', 'Time between probes of each target.'),
  timeout: duration('2s', 'A probe slower than this fails.'),
  healthyThreshold: z.number().int().min(1).default(2).describe('Passes in a row to bring a target back. Default: 2.'),
  unhealthyThreshold: z.number().int().min(1).default(3).describe('Failures in a row to take a target out. Default: 3.'),
  expectStatus: z.array(z.number().int().min(100).max(599)).default([200]).describe('Statuses that count as healthy. Default: [200].'),
})

export const upstreamSchema = z.strictObject({
  targets: z.array(target).min(1).describe('Targets; all must use the same scheme.'),
  balancing: z.enum(['round_robin', 'least_request']).default('round_robin').describe('Default: round_robin.'),
  tls: upstreamTls.optional().describe('TLS to https targets.'),
  connectionsPerTarget: z.number().int().min(1).default(128).describe('Most open connections to one target. Default: 128.'),
  maxPendingRequests: z
    .number()
    .int()
    .min(0)
    .default(1024)
    .describe('Requests that may wait for a free connection to one target. A target with this many waiting gets no more; when every target is full the request is answered 503 (upstream_unavailable). Default: 1024.'),
  connectTimeout: duration('5s', 'TCP and TLS connect.'),
  keepAliveTimeout: duration('4s', 'Idle pooled connections are closed after this (keep it below the upstream\'s own).'),
  healthCheck: z
    .strictObject({ passive: passiveHealth.describe('Ejection of targets that fail in a row; always on.'), active: activeHealth.optional().describe('Active probes; off unless set.') })
    .prefault({})
    .describe('How unhealthy targets are found and taken out of rotation.'),
  hostHeader: z.enum(['preserve', 'target']).default('target').describe('"target": Host is the target\'s host; "preserve": the client\'s Host. Default: target.'),
})
export type UpstreamConfig = z.infer<typeof upstreamSchema>

export const upstreamsSchema = z.record(name, upstreamSchema).describe('Upstreams by name.')
