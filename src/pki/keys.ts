/**
 * Key pairs for the CA and the certificates it issues: generation, encrypted
 * storage and loading for signing.
 *
 * Decisions:
 * - Algorithms: ECDSA P-256 (default: fast, small, accepted by every TLS
 *   stack), P-384, RSA 3072 and 4096 (for peers that cannot do ECDSA). No
 *   RSA-2048 for our own keys: NIST SP 800-57 retires it after 2030 and a CA
 *   key outlives its leaves. RSA signs with PKCS#1 v1.5, not PSS, because
 *   many TLS clients still cannot verify PSS-signed certificates.
 * - Keys are generated and encrypted with Node's `crypto` (OpenSSL), not
 *   @peculiar/x509: @peculiar has no encrypted PKCS#8, and writing PBES2 by
 *   hand in ASN.1 is what the issue tells us not to do. Node writes PBES2 with
 *   PBKDF2-HMAC-SHA256 and AES-256-CBC, which `openssl pkey` reads. OpenSSL
 *   uses only 2048 PBKDF2 iterations there, so the passphrase must carry the
 *   strength itself: we require at least `minPassphraseLength` characters
 *   and expect a generated secret (env or file), not a memorable word.
 * - Keys in memory for signing are WebCrypto keys imported non-extractable;
 *   the plaintext PKCS#8 bytes used for the import are zeroed afterwards.
 */
import { createPrivateKey, createPublicKey, generateKeyPair, webcrypto } from 'node:crypto'
import type { KeyObject } from 'node:crypto'
import { promisify } from 'node:util'
import { CaError } from './ca-errors.js'

const generate = promisify(generateKeyPair)
const subtle = (webcrypto as unknown as Crypto).subtle

/** The key algorithms the CA generates, with what WebCrypto needs to import and sign. */
export const keyAlgorithms = {
  'ec-p256': {
    import: { name: 'ECDSA', namedCurve: 'P-256' },
    sign: { name: 'ECDSA', hash: 'SHA-256' },
  },
  'ec-p384': {
    import: { name: 'ECDSA', namedCurve: 'P-384' },
    sign: { name: 'ECDSA', hash: 'SHA-384' },
  },
  'rsa-3072': {
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
    sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
  },
  'rsa-4096': {
    import: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
    sign: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-384' },
  },
} as const satisfies Record<string, { readonly import: EcKeyImportParams | RsaHashedImportParams; readonly sign: EcdsaParams | Algorithm & { hash: string } }>

/** A key algorithm name, e.g. 'ec-p256'. */
export type KeyAlgorithmName = keyof typeof keyAlgorithms

/** The default for CA and issued keys. */
export const defaultKeyAlgorithm: KeyAlgorithmName = 'ec-p256'

/**
 * Shortest accepted passphrase. 2048 PBKDF2 iterations (see module doc) make
 * each guess cheap, so the passphrase must be high-entropy: 16 characters of
 * a generated secret is ~96 bits or more.
 */
export const minPassphraseLength = 16

/** True for a supported algorithm name; for validating CLI and config input. */
export function isKeyAlgorithmName(value: string): value is KeyAlgorithmName {
  return Object.hasOwn(keyAlgorithms, value)
}

/** A private key ready to sign certificates, and what it signs with. Holds no extractable key material. */
export interface SigningKey {
  readonly algorithm: KeyAlgorithmName
  /** Non-extractable WebCrypto private key with usage 'sign'. */
  readonly privateKey: CryptoKey
  /** The algorithm @peculiar/x509 signs with for this key. */
  readonly signingAlgorithm: (typeof keyAlgorithms)[KeyAlgorithmName]['sign']
  /** DER SubjectPublicKeyInfo of the matching public key. */
  readonly spkiDer: Buffer
}

/** Generates a key pair. RSA runs on libuv's thread pool, so a 4096-bit key does not block the event loop. */
export async function generateKey(algorithm: KeyAlgorithmName): Promise<KeyObject> {
  switch (algorithm) {
    case 'ec-p256':
      return (await generate('ec', { namedCurve: 'P-256' })).privateKey
    case 'ec-p384':
      return (await generate('ec', { namedCurve: 'P-384' })).privateKey
    case 'rsa-3072':
      return (await generate('rsa', { modulusLength: 3072 })).privateKey
    case 'rsa-4096':
      return (await generate('rsa', { modulusLength: 4096 })).privateKey
  }
}

/** Throws `ca_passphrase_too_short` unless the passphrase is long enough to protect a key (see `minPassphraseLength`). */
export function checkPassphrase(passphrase: string): void {
  if (passphrase.length < minPassphraseLength) {
    throw new CaError('ca_passphrase_too_short', `at least ${minPassphraseLength} characters are required`)
  }
}

/** Encrypted PKCS#8 PEM ("ENCRYPTED PRIVATE KEY"), PBES2 with AES-256-CBC. */
export function encryptPrivateKey(key: KeyObject, passphrase: string): string {
  checkPassphrase(passphrase)
  return key.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase }) as string
}

/** Unencrypted PKCS#8 PEM, for keys handed to a user who asked for a plain key file. */
export function plainPrivateKey(key: KeyObject): string {
  return key.export({ type: 'pkcs8', format: 'pem' }) as string
}

const encryptedPemPattern = /^-----BEGIN ENCRYPTED PRIVATE KEY-----\r?\n[A-Za-z0-9+/=\r\n]+-----END ENCRYPTED PRIVATE KEY-----\s*$/

/**
 * Decrypts an encrypted PKCS#8 PEM. A plaintext key is refused
 * (`ca_key_not_encrypted`): a CA key must never sit unencrypted on disk, and
 * accepting one would hide that it does. Any decryption failure is
 * `ca_passphrase_invalid` — with AES-CBC a wrong passphrase sometimes yields
 * valid padding and then fails as a DER error, so the OpenSSL code alone
 * cannot tell the cases apart. `what` names the key in errors.
 */
export function decryptPrivateKey(pem: string, passphrase: string, what: string): KeyObject {
  if (!encryptedPemPattern.test(pem)) {
    if (pem.includes('PRIVATE KEY-----')) throw new CaError('ca_key_not_encrypted', what)
    throw new CaError('ca_corrupt', `${what} is not a PEM private key`)
  }
  try {
    return createPrivateKey({ key: pem, format: 'pem', passphrase })
  } catch (cause) {
    // The cause is OpenSSL's error (code and text only; no key bytes).
    throw new CaError('ca_passphrase_invalid', what, { cause })
  }
}

/** Names the algorithm of a key, or undefined for one the CA does not use (e.g. RSA-2048, Ed25519). */
export function keyAlgorithmOf(key: KeyObject): KeyAlgorithmName | undefined {
  const details = key.asymmetricKeyDetails
  if (key.asymmetricKeyType === 'ec') {
    if (details?.namedCurve === 'prime256v1') return 'ec-p256'
    if (details?.namedCurve === 'secp384r1') return 'ec-p384'
  }
  if (key.asymmetricKeyType === 'rsa') {
    if (details?.modulusLength === 3072) return 'rsa-3072'
    if (details?.modulusLength === 4096) return 'rsa-4096'
  }
  return undefined
}

/** DER SubjectPublicKeyInfo of a private or public key. */
export function spkiOf(key: KeyObject): Buffer {
  const pub = key.type === 'private' ? createPublicKey(key) : key
  return pub.export({ type: 'spki', format: 'der' })
}

/** Imports a private key for signing as a non-extractable WebCrypto key; zeroes the plaintext bytes used for it. */
export async function toSigningKey(key: KeyObject): Promise<SigningKey> {
  const algorithm = keyAlgorithmOf(key)
  if (!algorithm) throw new CaError('ca_corrupt', 'unsupported CA key algorithm')
  const der = key.export({ type: 'pkcs8', format: 'der' })
  try {
    const privateKey = await subtle.importKey('pkcs8', der, keyAlgorithms[algorithm].import, false, ['sign'])
    return { algorithm, privateKey, signingAlgorithm: keyAlgorithms[algorithm].sign, spkiDer: spkiOf(key) }
  } finally {
    der.fill(0)
  }
}
