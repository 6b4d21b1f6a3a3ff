/**
 * The CA folder's layout and its metadata file. One place names the files so
 * init, load and export cannot disagree.
 *
 * ```
 * <dir>/            0700
 *   ca.json         0644  metadata: key algorithm, CRL/OCSP URLs (written last: its presence means init finished)
 *   root.crt        0644
 *   root.key        0600  encrypted PKCS#8; absent once exported offline
 *   intermediate.crt 0644
 *   intermediate.key 0600 encrypted PKCS#8
 *   chain.pem       0644  intermediate then root, what TLS peers and EST /cacerts serve
 * ```
 */
import { z } from 'zod'
import { CaError } from './ca-errors.js'
import { keyAlgorithms } from './keys.js'
import type { KeyAlgorithmName } from './keys.js'

/** File names inside the CA folder. */
export const caFiles = {
  meta: 'ca.json',
  rootCert: 'root.crt',
  rootKey: 'root.key',
  intermediateCert: 'intermediate.crt',
  intermediateKey: 'intermediate.key',
  chain: 'chain.pem',
  initLock: '.init.lock',
} as const

/**
 * Where relying parties find revocation data; absent URLs leave the extension
 * out. Leaves point at the intermediate's CRL and OCSP responder; the
 * intermediate points at the root's (published by whoever holds the offline
 * root key). http(s) only; RFC 5280 recommends plain http so fetching a CRL
 * does not itself need a revocation check.
 */
export interface CaUrls {
  /** CRL signed by the intermediate; in every leaf's CRL distribution point. */
  readonly crlUrl?: string
  /** OCSP responder for leaves; in every leaf's AIA. */
  readonly ocspUrl?: string
  /** CRL signed by the root; in the intermediate's CRL distribution point. */
  readonly rootCrlUrl?: string
  /** OCSP responder for the intermediate; in the intermediate's AIA. */
  readonly rootOcspUrl?: string
}

const httpUrl = z
  .string()
  .max(2048)
  .refine((s) => {
    try {
      const u = new URL(s)
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.username === '' && u.password === '' && u.hash === ''
    } catch {
      return false
    }
  }, 'expected an http(s) URL without credentials or fragment')

const urlsSchema = z.strictObject({
  crlUrl: httpUrl.optional(),
  ocspUrl: httpUrl.optional(),
  rootCrlUrl: httpUrl.optional(),
  rootOcspUrl: httpUrl.optional(),
})

const metaSchema = z.strictObject({
  version: z.literal(1),
  keyAlgorithm: z.enum(Object.keys(keyAlgorithms) as [KeyAlgorithmName, ...KeyAlgorithmName[]]),
  urls: urlsSchema,
  createdAt: z.string(),
})

/** Contents of ca.json. */
export type CaMeta = z.infer<typeof metaSchema>

/** Validates URLs given to init; throws `ca_config_invalid` naming the field. */
export function parseCaUrls(urls: unknown): CaUrls {
  const result = urlsSchema.safeParse(urls ?? {})
  if (!result.success) {
    const issue = result.error.issues[0]
    throw new CaError('ca_config_invalid', `urls.${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`)
  }
  return result.data
}

/** Parses ca.json strictly; throws `ca_corrupt` on anything unexpected. */
export function parseCaMeta(text: string): CaMeta {
  let json: unknown
  try {
    json = JSON.parse(text)
  } catch {
    throw new CaError('ca_corrupt', `${caFiles.meta} is not JSON`)
  }
  const result = metaSchema.safeParse(json)
  if (!result.success) throw new CaError('ca_corrupt', `${caFiles.meta} has unexpected contents`)
  return result.data
}
