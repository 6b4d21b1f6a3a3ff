/**
 * `routes:` — what is reachable. A request no route matches is answered 404;
 * a route admits only the identities and addresses it names (deny by default).
 */
import { z } from 'zod'
import { cidr, duration, hostPattern, name, size } from './common.js'

const methods = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS'] as const

const pathMatch = z
  .union([
    z.strictObject({ exact: z.string().startsWith('/').describe('The whole path.') }),
    z.strictObject({ prefix: z.string().startsWith('/').describe('A path prefix, matched at a segment boundary: "/api" matches "/api" and "/api/x", not "/apix".') }),
    z.strictObject({ pattern: z.string().startsWith('/').describe('Segments with parameters, e.g. "/orders/:id/items/:item".') }),
  ])
  .describe('`{ exact }`, `{ prefix }` or `{ pattern }`. Default: `{ prefix: / }` (every path).')

const access = z
  .strictObject({
    identities: z.array(name).default([]).describe('Identities (from `identities:`) admitted. Default: [] (none).'),
    allowAnyClientCert: z.boolean().default(false).describe('Admit any verified client certificate, named or not. Default: false.'),
    allowAnonymous: z
      .boolean()
      .default(false)
      .describe('Admit requests without a client certificate (listener mode "optional"). A public route. Default: false.'),
    ipAllow: z.array(cidr).default([]).describe('If set, only these client addresses. Default: [] (any).'),
    ipDeny: z.array(cidr).default([]).describe('Client addresses refused, checked before ipAllow. Default: [].'),
  })
  .prefault({})

const limits = z
  .strictObject({
    maxBodySize: size('1MiB', 'Largest request body; larger is answered 413 (Content-Length up front, or when streaming passes it).'),
    maxUrlLength: size('8KiB', 'Longest request target (path and query); longer is answered 414.'),
  })
  .prefault({})

const timeouts = z
  .strictObject({
    responseHeaders: duration('15s', 'Upstream must send response headers within this.'),
    idle: duration('60s', 'Longest gap between body chunks, either direction.'),
    total: duration('5m', 'Whole exchange, first byte in to last byte out.'),
  })
  .prefault({})

const retries = z
  .strictObject({
    attempts: z.number().int().min(0).max(5).default(1).describe('Extra attempts on another target. Only for connect failures, or for idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) without a body when the upstream reset before answering. Default: 1.'),
  })
  .prefault({})

const headers = z
  .strictObject({
    forwarded: z.enum(['x-forwarded', 'forwarded', 'both']).default('x-forwarded').describe('X-Forwarded-For/-Proto/-Host, RFC 7239 Forwarded, or both. Default: x-forwarded.'),
    clientCert: z.boolean().default(true).describe('Send the verified client certificate as RFC 9440 Client-Cert and Client-Cert-Chain. Default: true.'),
    xfcc: z.boolean().default(false).describe('Also send an Envoy-compatible X-Forwarded-Client-Cert. Default: false.'),
    identityAssertion: z.boolean().default(false).describe('Send a short-lived JWT signed by the gateway (`identityAssertion:`) in `Portcullis-Identity`. Default: false.'),
    set: z.record(z.string(), z.string()).default({}).describe('Request headers set (replacing any from the client). Default: {}.'),
    remove: z.array(z.string()).default([]).describe('Request headers removed. Default: [].'),
  })
  .prefault({})

export const routeSchema = z.strictObject({
  name: name.describe('Route name, in logs and metrics.'),
  listeners: z.array(name).default([]).describe('Listeners the route is served on. Default: [] (all).'),
  match: z.strictObject({
    hosts: z.array(hostPattern).default([]).describe('Host names ("*.example.com" allowed). Default: [] (any host).'),
    path: pathMatch.prefault({ prefix: '/' }),
    methods: z.array(z.enum(methods)).default([]).describe('Default: [] (any of ' + methods.join(', ') + ').'),
  }).describe('What requests the route takes: host, path and method. The most specific route wins (see docs/architecture.md).'),
  access: access.describe('Who may use the route. Deny by default: a route admits nobody until it names identities or sets allowAnyClientCert / allowAnonymous.'),
  upstream: name.describe('Upstream name (from `upstreams:`).'),
  stripPrefix: z.string().startsWith('/').optional().describe('Removed from the path before forwarding (with a `prefix` match).'),
  limits: limits.describe('Per-route request limits.'),
  timeouts: timeouts.describe('Per-route upstream timeouts.'),
  retries: retries.describe('Retries on another target, only where safe.'),
  headers: headers.describe('What the upstream is told: forwarding headers, the verified identity, and header edits.'),
})
export type RouteConfig = z.infer<typeof routeSchema>

export const routesSchema = z.array(routeSchema).default([]).describe('Routes, matched most specific first. Default: [] (nothing is reachable).')
