/**
 * Building blocks shared by the section schemas: durations, sizes, names,
 * references to PEM material and secrets. Each `.describe()` is operator text
 * and states the default; docs/configuration.md is generated from it.
 */
import { isIP } from 'node:net'
import { z } from 'zod'
import { parseDuration, parseSize } from '../../shared/duration.js'

/** A duration written as "250ms", "10s", "5m", "1h", "30d"; parsed to milliseconds. */
export function duration(defaultText: string, description: string) {
  return z
    .string()
    .refine((t) => parseDuration(t) !== undefined, { message: 'expected a duration like "250ms", "10s", "5m", "1h"' })
    .transform((t) => parseDuration(t)!)
    .prefault(defaultText) // prefault: the default goes through parsing; zod 4's .default() would skip the transform
    .describe(`${description} Default: ${defaultText}.`)
}

/** A size written as "512", "16KiB", "1MiB"; parsed to bytes. */
export function size(defaultText: string, description: string) {
  return z
    .union([z.number().int().nonnegative(), z.string()])
    .refine((t) => (typeof t === 'number' ? true : parseSize(t) !== undefined), {
      message: 'expected a size like 8192, "16KiB" or "1MiB"',
    })
    .transform((t) => (typeof t === 'number' ? t : parseSize(t)!))
    .prefault(defaultText)
    .describe(`${description} Default: ${defaultText}.`)
}

/** Names of listeners, upstreams, identities and routes: they appear in logs and metrics. */
export const name = z
  .string()
  .regex(/^[a-z0-9][a-z0-9_.-]{0,62}$/i, 'expected 1-63 letters, digits, ".", "_" or "-", starting with a letter or digit')

/**
 * PEM material: one of `file` (a path, relative to the config file), `pem`
 * (inline text) or `env` (an environment variable holding PEM text).
 */
export const pemSource = z
  .union([
    z.strictObject({ file: z.string().min(1).describe('Path to a PEM file, relative to the config file.') }),
    z.strictObject({ pem: z.string().min(1).describe('Inline PEM text.') }),
    z.strictObject({ env: z.string().min(1).describe('Name of an environment variable holding PEM text.') }),
  ])
  .describe('PEM material: `{ file: path }`, `{ pem: text }` or `{ env: VAR }`.')
export type PemSource = z.infer<typeof pemSource>

/** A secret: `{ env: VAR }` or `{ file: path }`; never inline, so configs can be shared and versioned. */
export const secretRef = z
  .union([
    z.strictObject({ env: z.string().min(1) }),
    z.strictObject({ file: z.string().min(1) }),
  ])
  .describe('A secret read from `{ env: VAR }` or `{ file: path }` (trailing newline removed). Never inline.')
export type SecretRef = z.infer<typeof secretRef>

/** An IPv4/IPv6 address or CIDR block. */
export const cidr = z.string().refine(
  (text) => {
    const [addr, bits, extra] = text.split('/')
    if (extra !== undefined || !addr) return false
    const family = isIP(addr)
    if (family === 0) return false
    if (bits === undefined) return true
    if (!/^\d{1,3}$/.test(bits)) return false
    return Number(bits) <= (family === 4 ? 32 : 128)
  },
  { message: 'expected an IPv4 or IPv6 address or CIDR block, e.g. "10.0.0.0/8" or "2001:db8::/32"' },
)

/** A DNS name or wildcard ("*.example.com") as used in SNI and Host matching; lowercased. */
export const hostPattern = z
  .string()
  .regex(/^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/i, 'expected a host name or "*.suffix"')
  .transform((h) => h.toLowerCase())
