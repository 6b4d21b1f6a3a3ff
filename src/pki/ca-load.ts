/**
 * Opens an existing CA folder for issuing: reads the certificates, checks
 * they belong together, and decrypts the intermediate key into a
 * non-extractable signing key. Reads only; never writes, so a wrong
 * passphrase or a damaged folder leaves everything as it was.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as x509 from '@peculiar/x509'
import { CaError } from './ca-errors.js'
import { caFiles, parseCaMeta } from './ca-files.js'
import type { CaUrls } from './ca-files.js'
import { decryptPrivateKey, toSigningKey } from './keys.js'
import type { KeyAlgorithmName, SigningKey } from './keys.js'

const crypto = webcrypto as unknown as Crypto

/** A CA ready to issue. Holds the intermediate's signing key (non-extractable); never the root key. */
export interface LoadedCa {
  /** Absolute path of the CA folder. */
  readonly dir: string
  readonly keyAlgorithm: KeyAlgorithmName
  readonly urls: CaUrls
  readonly root: x509.X509Certificate
  readonly intermediate: x509.X509Certificate
  /** Intermediate then root, PEM: what a leaf's holder presents after its own certificate. */
  readonly chainPem: string
  /** SubjectKeyIdentifier of the intermediate (lowercase hex), written as every leaf's AKI. */
  readonly intermediateKeyId: string
  readonly signer: SigningKey
  /** Whether root.key is still in the folder (false once exported offline). */
  readonly hasRootKey: boolean
}

/** What `loadCa` needs. */
export interface LoadCaOptions {
  readonly dir: string
  readonly passphrase: string
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8')
  } catch (cause) {
    throw new CaError('ca_corrupt', `cannot read ${path}`, { cause })
  }
}

function parseCert(pem: string, what: string): x509.X509Certificate {
  try {
    return new x509.X509Certificate(pem)
  } catch (cause) {
    throw new CaError('ca_corrupt', `${what} is not a PEM certificate`, { cause })
  }
}

/** Lowercase hex SKI of a CA certificate; a CA without one is refused (every leaf's AKI needs it). */
export function keyIdOf(cert: x509.X509Certificate, what: string): string {
  const ski = cert.getExtension(x509.SubjectKeyIdentifierExtension)
  if (!ski) throw new CaError('ca_corrupt', `${what} has no subject key identifier`)
  return ski.keyId.toLowerCase()
}

/**
 * Loads the CA in `dir`. Throws `ca_not_found` when init never finished
 * there, `ca_passphrase_invalid` for a wrong passphrase, `ca_corrupt` when
 * the files do not form root → intermediate → key.
 */
export async function loadCa(opts: LoadCaOptions): Promise<LoadedCa> {
  const dir = resolve(opts.dir)
  let metaText: string
  try {
    metaText = await readFile(join(dir, caFiles.meta), 'utf8')
  } catch (cause) {
    throw new CaError('ca_not_found', dir, { cause })
  }
  const meta = parseCaMeta(metaText)
  const root = parseCert(await readText(join(dir, caFiles.rootCert)), caFiles.rootCert)
  const intermediate = parseCert(await readText(join(dir, caFiles.intermediateCert)), caFiles.intermediateCert)

  const isRootSelfSigned = await root.verify({ publicKey: root, signatureOnly: true }, crypto).catch(() => false)
  const isIntermediateFromRoot = await intermediate.verify({ publicKey: root, signatureOnly: true }, crypto).catch(() => false)
  if (!isRootSelfSigned || !isIntermediateFromRoot) throw new CaError('ca_corrupt', 'the intermediate is not signed by the root')

  const key = decryptPrivateKey(await readText(join(dir, caFiles.intermediateKey)), opts.passphrase, caFiles.intermediateKey)
  const signer = await toSigningKey(key)
  if (!Buffer.from(intermediate.publicKey.rawData).equals(signer.spkiDer)) {
    throw new CaError('ca_corrupt', `${caFiles.intermediateKey} does not match ${caFiles.intermediateCert}`)
  }
  const hasRootKey = await stat(join(dir, caFiles.rootKey)).then(
    () => true,
    () => false,
  )
  return {
    dir,
    keyAlgorithm: meta.keyAlgorithm,
    urls: meta.urls,
    root,
    intermediate,
    chainPem: intermediate.toString('pem') + '\n' + root.toString('pem') + '\n',
    intermediateKeyId: keyIdOf(intermediate, caFiles.intermediateCert),
    signer,
    hasRootKey,
  }
}
