/**
 * `pki:` — the built-in CA: where its files and inventory live, partner
 * signing policies, and the plain-HTTP endpoint that serves its CRL and OCSP
 * answers (the URLs written into every certificate it issues). Optional: a
 * gateway that only trusts external CAs has no `pki:` section.
 */
import { z } from 'zod'
import { duration, name, secretRef } from './common.js'

const partnerPolicy = z.strictObject({
  profiles: z
    .array(z.enum(['server', 'client', 'partner', 'spiffe']))
    .default(['partner'])
    .describe('Profiles the partner may request with a CSR. Default: [partner].'),
  dnsNames: z.array(z.string()).default([]).describe('DNS SANs the partner may request: exact names or "*.suffix" (any depth below). Default: [].'),
  spiffePrefixes: z
    .array(z.string().startsWith('spiffe://'))
    .default([])
    .describe('SPIFFE id prefixes, matched at a path-segment boundary. Default: [].'),
  commonNames: z.array(z.string()).default([]).describe('Subject CNs allowed besides the granted SANs. Default: [].'),
  keyTypes: z
    .array(z.enum(['ec-p256', 'ec-p384', 'rsa']))
    .default(['ec-p256', 'ec-p384', 'rsa'])
    .describe('Key types accepted in CSRs. Default: all of ec-p256, ec-p384, rsa.'),
  minRsaBits: z.number().int().min(2048).default(2048).describe('Smallest RSA modulus. Default: 2048.'),
  maxLifetime: duration('90d', 'Longest certificate lifetime for this partner (the profile maximum also applies).'),
})

const inventory = z
  .union([
    z.strictObject({ sqlite: z.string().min(1).describe('SQLite file, relative to the config file.') }),
    z.strictObject({
      postgres: z.strictObject({
        connectionString: secretRef.describe('postgres:// URL (it may hold a password, so it is a secret reference).'),
        schema: z.string().regex(/^[a-z_][a-z0-9_]{0,62}$/).default('portcullis').describe('Schema for the tables. Default: portcullis.'),
      }),
    }),
  ])
  .describe('Where the inventory of issued certificates lives: `{ sqlite: path }` or `{ postgres: { connectionString, schema } }`.')

export const pkiSchema = z
  .strictObject({
    caDir: z.string().min(1).describe('Folder made by `portcullis ca init`, relative to the config file.'),
    passphrase: secretRef.describe('Passphrase of the CA keys.'),
    inventory,
    http: z
      .strictObject({
        host: z.string().default('127.0.0.1').describe('Default: 127.0.0.1.'),
        port: z.number().int().min(0).max(65535).describe('TCP port of the CRL/OCSP endpoint.'),
      })
      .optional()
      .describe('Plain-HTTP endpoint serving /crl (DER) and /ocsp (RFC 6960, GET and POST). Off unless set.'),
    crlValidity: duration('7d', 'nextUpdate of each CRL; it is regenerated at two-thirds of this, and at once on a revocation.'),
    ocspValidity: duration('1h', 'nextUpdate of each OCSP answer.'),
    revocationSync: duration('500ms', 'How often the gateway reads new revocations from the inventory; a revoked certificate is refused, and its connections closed, within this.'),
    partners: z.record(name, partnerPolicy).default({}).describe('CSR signing policies by partner name. Default: {}.'),
  })
  .describe('The built-in CA (see docs/operations.md, "Certificate authority").')
export type PkiConfig = z.infer<typeof pkiSchema>
