/**
 * The development PKI behind `portcullis start` without a config: a root CA,
 * a localhost server certificate and one client certificate, kept in a data
 * folder so a second start reuses them (and a browser or curl that trusts the
 * dev CA keeps working).
 *
 * This is only the dev bootstrap. The real CA — root plus intermediate, CSR
 * signing, renewal loop, revocation — is a separate piece in `src/pki/`; do
 * not grow this file into it.
 *
 * Decisions:
 * - The data folder belongs to Portcullis. Anything in it that cannot be used
 *   as is (unparsable, key not matching its certificate, leaf not signed by
 *   the CA, a key file others may read, profile changed) is replaced, which
 *   also heals a crash between writing a key and its certificate.
 * - Reuse needs at least `minRemainingMs` (7 days) of validity left on the
 *   injected Clock; otherwise leaves are re-issued from the existing CA with
 *   fresh keys. A CA that is itself unusable or near its end is replaced, and
 *   then every leaf with it.
 * - Keys are PKCS#8 PEM, mode 0600; certificates 0644 inside a 0700 folder.
 *   Every file is written atomically. Nothing here logs; errors never carry
 *   key bytes.
 * - Two first starts racing on one folder each write whole files; a
 *   mismatched pair that a race could leave is detected and replaced on the
 *   next start. There is no lock: a dev bootstrap does not need one.
 */
// Before @peculiar/x509 is evaluated (imports run in order); see dev-certs.ts.
import 'reflect-metadata'
import { X509Certificate as NodeCertificate, createPrivateKey } from 'node:crypto'
import { readFile, stat } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as x509 from '@peculiar/x509'
import type { Clock } from '../shared/clock.js'
import { devProfile, importCaKey, issueDevCa, issueDevLeaf, useNodeCrypto } from './dev-certs.js'
import type { DevLeafKind, IssuedPair } from './dev-certs.js'
import { ensurePrivateDir, writeFileAtomic } from '../shared/private-files.js'

/** Certificates with less validity left than this are replaced (7 days). */
export const minRemainingMs = 7 * 86_400_000

/** What `ensureDevPki` did with a certificate, so the CLI can say "new CA: trust it again". */
export type DevCertStatus = 'created' | 'reused' | 'renewed'

/** One certificate of the dev PKI: where it lives and what it is. Never holds key material. */
export interface DevCertificate {
  /** Absolute path of the PEM certificate. */
  readonly certPath: string
  /** Absolute path of the PKCS#8 PEM private key (mode 0600). */
  readonly keyPath: string
  readonly certPem: string
  /** SHA-256 of the DER certificate, lowercase hex without separators (as in `Identity`). */
  readonly fingerprint256: string
  /** End of validity, ms since epoch. */
  readonly notAfter: number
  readonly status: DevCertStatus
}

/** The dev PKI as found or made in the data folder. */
export interface DevPki {
  /** Absolute path of the data folder (mode 0700). */
  readonly dir: string
  readonly ca: DevCertificate
  /** Server certificate for localhost, 127.0.0.1 and ::1. */
  readonly server: DevCertificate
  /** Client certificate CN=dev-client with the SPIFFE id below. */
  readonly client: DevCertificate
  /** The client certificate's SPIFFE id (URI SAN), for identity matchers. */
  readonly clientSpiffeId: string
}

const fileNames = {
  ca: { cert: 'ca.crt', key: 'ca.key' },
  server: { cert: 'server.crt', key: 'server.key' },
  client: { cert: 'client.crt', key: 'client.key' },
} as const

/**
 * Makes sure `dataDir` holds a usable dev CA, server and client certificate,
 * creating or renewing what is missing or about to expire, and returns them.
 * Idempotent: a second call with the same clock changes nothing.
 */
export async function ensureDevPki(dataDir: string, deps: { clock: Clock }): Promise<DevPki> {
  useNodeCrypto()
  const dir = resolve(dataDir)
  await ensurePrivateDir(dir)
  const now = deps.clock.now()

  const caFiles = paths(dir, 'ca')
  const caFound = await readPair(caFiles)
  let caPair: IssuedPair
  let caStatus: DevCertStatus
  if (caFound.pair && isUsableCa(caFound.pair, now)) {
    caPair = caFound.pair
    caStatus = 'reused'
  } else {
    caPair = await issueDevCa(now)
    await writePair(caFiles, caPair)
    caStatus = 'created'
  }
  const caCert = new NodeCertificate(caPair.certPem)
  const signingCa = { cert: new x509.X509Certificate(caPair.certPem), key: await importCaKey(caPair.keyPem) }

  const leaf = async (kind: DevLeafKind): Promise<DevCertificate> => {
    const files = paths(dir, kind)
    const found = await readPair(files)
    if (found.pair && isUsableLeaf(kind, found.pair, caCert, now)) return describe(files, found.pair.certPem, 'reused')
    const pair = await issueDevLeaf(kind, signingCa, now)
    await writePair(files, pair)
    return describe(files, pair.certPem, found.anyPresent ? 'renewed' : 'created')
  }

  return {
    dir,
    ca: describe(caFiles, caPair.certPem, caStatus),
    server: await leaf('server'),
    client: await leaf('client'),
    clientSpiffeId: devProfile.clientSpiffeId,
  }
}

interface PairPaths {
  readonly cert: string
  readonly key: string
}

function paths(dir: string, which: keyof typeof fileNames): PairPaths {
  return { cert: join(dir, fileNames[which].cert), key: join(dir, fileNames[which].key) }
}

/**
 * Reads a certificate and its key. `pair` is set only when both exist and the
 * key file is private (no group or other bits): a key others could read may
 * have been copied, so it is not reused.
 */
async function readPair(files: PairPaths): Promise<{ pair?: IssuedPair; anyPresent: boolean }> {
  const certPem = await readIfPresent(files.cert)
  const keyPem = await readIfPresent(files.key)
  const anyPresent = certPem !== undefined || keyPem !== undefined
  if (certPem === undefined || keyPem === undefined) return { anyPresent }
  const keyMode = (await stat(files.key)).mode
  if ((keyMode & 0o077) !== 0) return { anyPresent }
  return { pair: { certPem, keyPem }, anyPresent }
}

async function readIfPresent(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

/** Key first: a crash before the certificate lands leaves a mismatch, which the next start replaces. */
async function writePair(files: PairPaths, pair: IssuedPair): Promise<void> {
  await writeFileAtomic(files.key, pair.keyPem, 0o600)
  await writeFileAtomic(files.cert, pair.certPem, 0o644)
}

function describe(files: PairPaths, certPem: string, status: DevCertStatus): DevCertificate {
  const cert = new x509.X509Certificate(certPem)
  return {
    certPath: files.cert,
    keyPath: files.key,
    certPem,
    fingerprint256: new NodeCertificate(certPem).fingerprint256.replace(/:/g, '').toLowerCase(),
    notAfter: cert.notAfter.getTime(),
    status,
  }
}

/** Valid now and for at least `minRemainingMs` more. */
function hasTimeLeft(certPem: string, now: number): boolean {
  const cert = new x509.X509Certificate(certPem)
  return cert.notBefore.getTime() <= now && cert.notAfter.getTime() - now >= minRemainingMs
}

/** The key parses as P-256 and belongs to the certificate. */
function keyMatches(cert: NodeCertificate, keyPem: string): boolean {
  const key = createPrivateKey(keyPem)
  return key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1' && cert.checkPrivateKey(key)
}

function hasEku(certPem: string, oid: string): boolean {
  const eku = new x509.X509Certificate(certPem).getExtension(x509.ExtendedKeyUsageExtension)
  return eku?.usages.includes(oid) ?? false
}

/** A self-signed CA whose key we hold, with time left. Any parse error means "not usable". */
function isUsableCa(pair: IssuedPair, now: number): boolean {
  try {
    const cert = new NodeCertificate(pair.certPem)
    const usage = new x509.X509Certificate(pair.certPem).getExtension(x509.KeyUsagesExtension)
    return (
      cert.ca &&
      cert.checkIssued(cert) &&
      cert.verify(cert.publicKey) &&
      usage !== null &&
      (usage.usages & x509.KeyUsageFlags.keyCertSign) !== 0 &&
      keyMatches(cert, pair.keyPem) &&
      hasTimeLeft(pair.certPem, now)
    )
  } catch {
    return false
  }
}

/** A leaf signed by this CA, whose key we hold, with time left and today's profile (EKU, SAN). */
function isUsableLeaf(kind: DevLeafKind, pair: IssuedPair, ca: NodeCertificate, now: number): boolean {
  try {
    const cert = new NodeCertificate(pair.certPem)
    const isProfile =
      kind === 'server'
        ? hasEku(pair.certPem, x509.ExtendedKeyUsage.serverAuth) &&
          devProfile.serverDnsNames.every((n) => cert.checkHost(n, { subject: 'never' }) === n) &&
          devProfile.serverIps.every((ip) => cert.checkIP(ip) === ip)
        : hasEku(pair.certPem, x509.ExtendedKeyUsage.clientAuth) && cert.subjectAltName === `URI:${devProfile.clientSpiffeId}`
    return (
      !cert.ca &&
      cert.checkIssued(ca) &&
      cert.verify(ca.publicKey) &&
      isProfile &&
      keyMatches(cert, pair.keyPem) &&
      hasTimeLeft(pair.certPem, now)
    )
  } catch {
    return false
  }
}
