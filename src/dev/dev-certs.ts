/**
 * Issues the dev bootstrap's certificates with @peculiar/x509 over Node's
 * WebCrypto: an ECDSA P-256 root, a localhost server leaf and one client leaf.
 * Pure apart from key generation and randomness: the caller gives the time.
 *
 * The profiles follow what a public CA would issue (RFC 5280, CA/Browser
 * Forum baseline): random positive serials, SKI on every certificate, AKI on
 * leaves, a critical CA basicConstraints, critical keyUsage, one EKU per leaf.
 */
// @peculiar/x509 v2 resolves its algorithms through tsyringe, which needs the
// Reflect metadata API; it must be loaded before the library is evaluated.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import * as x509 from '@peculiar/x509'

const DAY_MS = 86_400_000

/** ECDSA P-256 with SHA-256: accepted by every TLS stack curl and Node use, small and fast. */
const keyAlgorithm = { name: 'ECDSA', namedCurve: 'P-256' } as const
const signingAlgorithm = { name: 'ECDSA', hash: 'SHA-256' } as const

/** Lifetimes and names of the dev certificates; exported so checks and tests share one source. */
export const devProfile = {
  caName: 'Portcullis Development CA',
  caValidityMs: 3650 * DAY_MS,
  leafValidityMs: 90 * DAY_MS,
  /** notBefore is set this far in the past, so a peer whose clock is a little behind accepts a fresh certificate. */
  backdateMs: 5 * 60_000,
  serverDnsNames: ['localhost'],
  serverIps: ['127.0.0.1', '::1'],
  clientSubject: 'CN=dev-client, O=Portcullis Dev',
  clientSpiffeId: 'spiffe://portcullis.dev/client/dev',
} as const

/** A certificate and its private key, both PEM. The key is PKCS#8 ("PRIVATE KEY"). */
export interface IssuedPair {
  readonly certPem: string
  readonly keyPem: string
}

/** The CA as needed to sign: its certificate and an imported, non-extractable signing key. */
export interface SigningCa {
  readonly cert: x509.X509Certificate
  readonly key: CryptoKey
}

const crypto = webcrypto as unknown as Crypto

/**
 * Points @peculiar/x509 at Node's WebCrypto. Idempotent; every call below
 * also passes the provider explicitly, so nothing depends on the global.
 */
export function useNodeCrypto(): void {
  x509.cryptoProvider.set(crypto)
}

/**
 * A random positive 128-bit serial (RFC 5280 4.1.2.2: positive, at most 20
 * octets; CA/B Forum: at least 64 random bits). The top bit is cleared so the
 * DER integer needs no sign octet, and the next one set so it is always 16 octets.
 */
export function randomSerial(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16))
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40
  return Buffer.from(bytes).toString('hex')
}

async function newKeyPair(): Promise<CryptoKeyPair> {
  return crypto.subtle.generateKey(keyAlgorithm, true, ['sign', 'verify'])
}

async function exportKeyPem(key: CryptoKey): Promise<string> {
  const der = await crypto.subtle.exportKey('pkcs8', key)
  return x509.PemConverter.encode(der, 'PRIVATE KEY')
}

/** Imports a PKCS#8 P-256 key for signing. Throws if the PEM is not one; the error never contains key bytes. */
export async function importCaKey(keyPem: string): Promise<CryptoKey> {
  const der = x509.PemConverter.decodeFirst(keyPem)
  return crypto.subtle.importKey('pkcs8', der, keyAlgorithm, false, ['sign'])
}

/**
 * A self-signed root: CA:TRUE critical without a path length (the real CA in
 * `pki/` adds an intermediate; the dev root signs leaves directly),
 * keyCertSign + cRLSign critical, SKI. The OU carries a random id so two
 * machines' dev CAs never share a name (RFC 5280 expects distinct issuers to
 * have distinct names, and chain builders match on them).
 */
export async function issueDevCa(nowMs: number): Promise<IssuedPair> {
  const keys = await newKeyPair()
  const installId = Buffer.from(crypto.getRandomValues(new Uint8Array(4))).toString('hex')
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: randomSerial(),
      name: `CN=${devProfile.caName}, OU=dev-${installId}, O=Portcullis Dev`,
      notBefore: new Date(nowMs - devProfile.backdateMs),
      notAfter: new Date(nowMs + devProfile.caValidityMs),
      keys,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
      ],
    },
    crypto,
  )
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) }
}

/** Which leaf to issue: the localhost server or the one dev client. */
export type DevLeafKind = 'server' | 'client'

/**
 * A leaf signed by `ca`, valid `leafValidityMs` from `nowMs` (never past the
 * CA's own end). CA:FALSE critical, digitalSignature critical (ECDSA signs the
 * handshake; it never enciphers keys), one EKU, SAN, SKI and an AKI equal to
 * the CA's SKI so chain builders pick the right issuer.
 */
export async function issueDevLeaf(kind: DevLeafKind, ca: SigningCa, nowMs: number): Promise<IssuedPair> {
  const keys = await newKeyPair()
  const caSki = ca.cert.getExtension(x509.SubjectKeyIdentifierExtension)
  const aki = caSki
    ? new x509.AuthorityKeyIdentifierExtension(caSki.keyId)
    : await x509.AuthorityKeyIdentifierExtension.create(ca.cert.publicKey, false, crypto)
  const notAfterMs = Math.min(nowMs + devProfile.leafValidityMs, ca.cert.notAfter.getTime())
  const san: x509.JsonGeneralNames =
    kind === 'server'
      ? [
          ...devProfile.serverDnsNames.map((value) => ({ type: 'dns' as const, value })),
          ...devProfile.serverIps.map((value) => ({ type: 'ip' as const, value })),
        ]
      : [{ type: 'url', value: devProfile.clientSpiffeId }]
  const cert = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: kind === 'server' ? 'CN=localhost, O=Portcullis Dev' : devProfile.clientSubject,
      issuer: ca.cert.subjectName,
      notBefore: new Date(nowMs - devProfile.backdateMs),
      notAfter: new Date(notAfterMs),
      publicKey: keys.publicKey,
      signingKey: ca.key,
      signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
        new x509.ExtendedKeyUsageExtension([kind === 'server' ? x509.ExtendedKeyUsage.serverAuth : x509.ExtendedKeyUsage.clientAuth]),
        new x509.SubjectAlternativeNameExtension(san),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
        aki,
      ],
    },
    crypto,
  )
  return { certPem: cert.toString('pem'), keyPem: await exportKeyPem(keys.privateKey) }
}
