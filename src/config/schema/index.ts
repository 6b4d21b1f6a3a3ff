/**
 * The whole configuration file. The one source of the config types, of
 * validation, of docs/configuration.md and of the JSON Schema for editors.
 * Validated configs are deep-frozen.
 */
import { z } from 'zod'
import { accessLogSchema, expiryMonitoringSchema, identityAssertionSchema, metricsSchema, pathsSchema, shutdownSchema } from './gateway.js'
import { identitiesSchema } from './identities.js'
import { listenersSchema } from './listeners.js'
import { pkiSchema } from './pki.js'
import { routesSchema } from './routes.js'
import { upstreamsSchema } from './upstreams.js'

export const configSchema = z.strictObject({
  version: z.literal(1).describe('Config format version. Always 1.'),
  listeners: listenersSchema,
  identities: identitiesSchema,
  upstreams: upstreamsSchema,
  routes: routesSchema,
  paths: pathsSchema,
  identityAssertion: identityAssertionSchema.optional(),
  pki: pkiSchema.optional(),
  accessLog: accessLogSchema,
  metrics: metricsSchema.optional(),
  expiryMonitoring: expiryMonitoringSchema,
  shutdown: shutdownSchema,
})

/** A validated configuration (defaults applied, durations in ms, sizes in bytes). */
export type Config = z.infer<typeof configSchema>
export type { ListenerConfig } from './listeners.js'
export type { RouteConfig } from './routes.js'
export type { UpstreamConfig } from './upstreams.js'
export type { PkiConfig } from './pki.js'
export type { IdentitiesConfig, IdentityMatcherConfig } from './identities.js'
/** `expiryMonitoring`, validated (thresholds in ms, largest first). */
export type ExpiryMonitoringConfig = Config['expiryMonitoring']
