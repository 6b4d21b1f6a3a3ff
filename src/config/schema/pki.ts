/**
 * `pki:` — the built-in CA: where its files and inventory live, partner
 * signing policies, and the plain-HTTP endpoint that serves its CRL and OCSP
 * answers (the URLs written into every certificate it issues). Optional: a
 * gateway that only trusts external CAs has no `pki:` section.
 */
import { normalize } from 'node:path'
import { z } from 'zod'
import { duration, name, pemSource, secretRef } from './common.js'

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

/** `TYPE:value` SANs as the CLI's `--san` takes them; their syntax is checked by the CA's profile rules when issuing. */
const managedSan = z
  .string()
  .regex(/^(dns|ip|uri|email):.+$/i, 'expected "DNS:name", "IP:address", "URI:uri" or "email:address"')

const managedCertificate = z.strictObject({
  name: name.describe('Name of the certificate, used in logs.'),
  profile: z.enum(['server', 'client']).describe('`server` for a listener, `client` for an upstream\'s `tls.cert`/`tls.key`.'),
  subject: z.string().min(1).describe('Subject DN, e.g. "CN=api.example.com, O=Acme".'),
  sans: z.array(managedSan).default([]).describe('Subject alternative names as "DNS:name", "IP:address", "URI:spiffe://..." or "email:address" (a server needs a DNS or IP name). Default: [].'),
  validity: duration('30d', 'Lifetime of each issued certificate; it is renewed at two-thirds of it.'),
  certFile: z.string().min(1).describe('Where the certificate and the issuing CA certificate are written (PEM), relative to the config file.'),
  keyFile: z.string().min(1).describe('Where the private key is written (PEM, PKCS#8, mode 0600), relative to the config file.'),
})

const managedCertificates = z
  .array(managedCertificate)
  .default([])
  .superRefine((list, ctx) => {
    const names = new Set<string>()
    const files = new Set<string>()
    list.forEach((entry, i) => {
      if (names.has(entry.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate managed certificate name "${entry.name}"` })
      names.add(entry.name)
      for (const field of ['certFile', 'keyFile'] as const) {
        const file = normalize(entry[field])
        if (files.has(file)) ctx.addIssue({ code: 'custom', path: [i, field], message: `"${entry[field]}" is written by another managed certificate entry or field` })
        files.add(file)
      }
    })
  })
  .describe('Certificates the gateway issues for itself from the built-in CA, writes to files, and renews at two-thirds of their lifetime (see docs/operations.md, "Managed certificates"). Listeners and upstreams use the files as ordinary `{ file }` PEM sources. Default: [].')

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
    est: z
      .strictObject({
        host: z.string().default('127.0.0.1').describe('Address to bind. Default: 127.0.0.1.'),
        port: z.number().int().min(0).max(65535).describe('TCP port of the EST server (HTTPS).'),
        tls: z
          .strictObject({
            cert: pemSource.describe('Server certificate chain (leaf first). A managed certificate\'s `certFile` works as `{ file }`.'),
            key: pemSource.describe('Private key of the server certificate.'),
            passphrase: secretRef.optional().describe('Passphrase of an encrypted key.'),
            minVersion: z.enum(['TLSv1.2', 'TLSv1.3']).default('TLSv1.2').describe('Lowest TLS version accepted (many devices only speak TLS 1.2). Default: TLSv1.2.'),
          })
          .describe('The EST server\'s own certificate (RFC 7030 §3.2: EST runs over TLS). Clients must trust its issuer.'),
        tokenTtl: duration('24h', 'Lifetime of an enrollment token made by `portcullis ca token create` without `--ttl`.'),
        maxTokenTtl: duration('7d', 'Longest lifetime `ca token create --ttl` accepts.'),
        requestTimeout: duration('10s', 'Deadline for the TLS handshake, and for each request\'s headers and body; slower clients are disconnected.'),
        maxConnections: z.number().int().positive().default(256).describe('Open connections at once; more are closed at accept. Default: 256.'),
      })
      .refine((est) => est.tokenTtl <= est.maxTokenTtl, { path: ['tokenTtl'], message: 'tokenTtl must not exceed maxTokenTtl' })
      .optional()
      .describe('EST enrollment server (RFC 7030) at https://HOST:PORT/.well-known/est/: cacerts, simpleenroll (a one-time token or an approved partner\'s certificate), simplereenroll (the current certificate over mTLS). See docs/operations.md, "Enrollment over EST". Off unless set.'),
    crlValidity: duration('7d', 'nextUpdate of each CRL; it is regenerated at two-thirds of this, and at once on a revocation.'),
    ocspValidity: duration('1h', 'nextUpdate of each OCSP answer.'),
    revocationSync: duration('500ms', 'How often the gateway reads new revocations from the inventory; a revoked certificate is refused, and its connections closed, within this.'),
    partners: z.record(name, partnerPolicy).default({}).describe('CSR signing policies by partner name. Default: {}.'),
    managedCertificates,
  })
  .describe('The built-in CA (see docs/operations.md, "Certificate authority").')
export type PkiConfig = z.infer<typeof pkiSchema>
