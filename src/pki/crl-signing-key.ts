/**
 * The signing half shared by the CRL builder and the OCSP responder: accepts
 * the issuer's (or OCSP signer's) private key as a Node KeyObject or a
 * WebCrypto CryptoKey, picks the signature algorithm from the key, and checks
 * that the key belongs to the certificate it is supposed to sign for.
 *
 * Supported: ECDSA P-256/P-384/P-521 (hash sized to the curve, as RFC 5480
 * §4 recommends) and RSA PKCS#1 v1.5 with SHA-256 — the key types the CA core
 * issues. RSA-PSS and EdDSA are refused: openssl and most OCSP clients in
 * the field verify them poorly or not at all, and a CRL nobody can check is
 * worse than an error at start-up.
 */
import { KeyObject, X509Certificate, createPublicKey, sign as nodeSign } from 'node:crypto'
import { AlgorithmIdentifier } from '@peculiar/asn1-x509'

/** The private key of an issuer or delegated signer, in either Node form. */
export type PrivateKeyInput = KeyObject | CryptoKey

/** A private key resolved once (at compile time) into everything a signer needs. */
export interface SigningKey {
  readonly keyObject: KeyObject
  /** Digest name for node:crypto and WebCrypto ("SHA-256"...). */
  readonly hash: 'SHA-256' | 'SHA-384' | 'SHA-512'
  /** WebCrypto algorithm for importing the key (used by @peculiar/x509). */
  readonly webCrypto: RsaHashedImportParams | EcKeyImportParams
  /** signatureAlgorithm for the ASN.1 structure being signed. */
  readonly algorithm: AlgorithmIdentifier
  /** Signs `data`; ECDSA signatures come DER-encoded, as X.509 and OCSP want. */
  sign(data: Uint8Array): Buffer
}

const NULL_PARAMS = new Uint8Array([0x05, 0x00]).buffer

const EC: Record<string, { hash: SigningKey['hash']; oid: string; curve: string }> = {
  prime256v1: { hash: 'SHA-256', oid: '1.2.840.10045.4.3.2', curve: 'P-256' },
  secp384r1: { hash: 'SHA-384', oid: '1.2.840.10045.4.3.3', curve: 'P-384' },
  secp521r1: { hash: 'SHA-512', oid: '1.2.840.10045.4.3.4', curve: 'P-521' },
}

/**
 * Resolves `key` and, when `certPem` is given, checks the certificate carries
 * its public key. Throws (a configuration error, raised at compile time) for
 * unsupported key types or a key/certificate mismatch — signing with the
 * wrong key would produce CRLs and OCSP responses every client rejects.
 */
export function resolveSigningKey(key: PrivateKeyInput, certPem?: string): SigningKey {
  const keyObject = key instanceof KeyObject ? key : KeyObject.from(key)
  if (keyObject.type !== 'private') throw new Error('signing key must be a private key')
  if (certPem !== undefined) {
    const cert = new X509Certificate(certPem)
    const fromKey = createPublicKey(keyObject).export({ type: 'spki', format: 'der' })
    const fromCert = cert.publicKey.export({ type: 'spki', format: 'der' })
    if (!fromKey.equals(fromCert)) throw new Error('signing key does not match the certificate public key')
  }
  const type = keyObject.asymmetricKeyType
  if (type === 'ec') {
    const curve = keyObject.asymmetricKeyDetails?.namedCurve ?? ''
    const ec = EC[curve]
    if (ec === undefined) throw new Error(`unsupported EC curve for signing: ${curve}`)
    return {
      keyObject,
      hash: ec.hash,
      webCrypto: { name: 'ECDSA', namedCurve: ec.curve },
      algorithm: new AlgorithmIdentifier({ algorithm: ec.oid }),
      sign: (data) => nodeSign(ec.hash, data, { key: keyObject, dsaEncoding: 'der' }),
    }
  }
  if (type === 'rsa') {
    return {
      keyObject,
      hash: 'SHA-256',
      webCrypto: { name: 'RSASSA-PKCS1-v1_5', hash: 'SHA-256' },
      // sha256WithRSAEncryption; RFC 4055 §5 requires explicit NULL parameters.
      algorithm: new AlgorithmIdentifier({ algorithm: '1.2.840.113549.1.1.11', parameters: NULL_PARAMS }),
      sign: (data) => nodeSign('SHA-256', data, keyObject),
    }
  }
  throw new Error(`unsupported signing key type: ${type ?? 'unknown'}`)
}

