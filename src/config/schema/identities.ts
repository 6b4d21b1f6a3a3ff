/**
 * `identities:` — named client identities (partners, services, devices). An
 * identity matches a verified certificate when ANY of its matchers does; a
 * matcher matches when ALL of its fields do. Routes admit identities by name.
 */
import { z } from 'zod'
import { name } from './common.js'

const hex256 = z
  .string()
  .transform((s) => s.replace(/:/g, '').toLowerCase())
  .refine((s) => /^[0-9a-f]{64}$/.test(s), { message: 'expected a SHA-256 fingerprint (64 hex digits, colons allowed)' })

const matcher = z
  .strictObject({
    spiffeId: z.string().startsWith('spiffe://').optional().describe('Exact SPIFFE id (URI SAN).'),
    spiffePrefix: z.string().startsWith('spiffe://').optional().describe('SPIFFE id prefix; matches at a path-segment boundary ("spiffe://td/ns/a" matches "spiffe://td/ns/a/x", not "spiffe://td/ns/ab").'),
    dns: z.string().optional().describe('A DNS SAN, exact (case-insensitive); "*.example.com" matches one label.'),
    uri: z.string().optional().describe('An exact URI SAN.'),
    email: z.string().optional().describe('An exact email SAN (case-insensitive).'),
    subject: z
      .record(z.string(), z.string())
      .optional()
      .describe('Subject attributes that must all be present with these exact values, e.g. `{ CN: orders, O: Acme }`.'),
    fingerprint: hex256.optional().describe('Pin: SHA-256 of the certificate.'),
    issuerFingerprint: hex256.optional().describe('SHA-256 of the issuing CA certificate (the one that signed the leaf).'),
  })
  .refine((m) => Object.values(m).some((v) => v !== undefined), { message: 'a matcher needs at least one field' })
export type IdentityMatcherConfig = z.infer<typeof matcher>

export const identitiesSchema = z
  .record(name, z.array(matcher).min(1))
  .default({})
  .describe('Named identities: `name: [matcher, ...]`. Default: {}.')
export type IdentitiesConfig = z.infer<typeof identitiesSchema>
