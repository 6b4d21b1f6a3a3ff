/**
 * `portcullis ca init`: creates a root CA and an online intermediate in a new
 * CA folder.
 *
 * Decisions:
 * - Two tiers. The root signs only the intermediate (pathlen 1) and can then
 *   be taken offline (`exportAndRemoveRootKey`); the intermediate (pathlen 0)
 *   signs every leaf, so losing it means re-issuing leaves, not re-trusting
 *   a root everywhere.
 * - Both keys use one algorithm and one passphrase. Separate passphrases add
 *   a secret to manage without protecting against anyone who can read the
 *   passphrase the gateway already holds.
 * - Nothing is overwritten, ever. Init takes an O_EXCL lock file, refuses if
 *   any CA file already exists, writes every file no-clobber, and writes
 *   ca.json last: a folder without it is an unfinished init that `loadCa`
 *   reports as `ca_not_found` and the operator removes by hand.
 * - Everything is generated and signed in memory before the first write, so
 *   a bad subject or URL fails without touching the disk.
 */
// Before @peculiar/x509 is evaluated; see dev/dev-certs.ts.
import 'reflect-metadata'
import { webcrypto } from 'node:crypto'
import { open, readdir, unlink } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import * as x509 from '@peculiar/x509'
import type { Clock } from '../shared/clock.js'
import { ensurePrivateDir, writeFileAtomic } from '../shared/private-files.js'
import { CaError } from './ca-errors.js'
import { caFiles, parseCaUrls } from './ca-files.js'
import type { CaMeta, CaUrls } from './ca-files.js'
import { loadCa } from './ca-load.js'
import type { LoadedCa } from './ca-load.js'
import { checkPassphrase, defaultKeyAlgorithm, encryptPrivateKey, generateKey, spkiOf, toSigningKey } from './keys.js'
import type { KeyAlgorithmName } from './keys.js'
import { randomSerial } from './serial.js'

const crypto = webcrypto as unknown as Crypto
const DAY_MS = 86_400_000

/** Default lifetimes: root 20 years, intermediate 5 years (renewed with the root key brought back online). */
export const defaultCaValidity = { rootMs: 20 * 365 * DAY_MS, intermediateMs: 5 * 365 * DAY_MS } as const

/** notBefore is this far in the past so peers with a slightly slow clock accept the new CA at once. */
const backdateMs = 5 * 60_000

/** What `initCa` needs. Subjects are DN strings such as "CN=Acme Root CA, O=Acme". */
export interface InitCaOptions {
  readonly dir: string
  readonly passphrase: string
  readonly clock: Clock
  readonly rootSubject: string
  readonly intermediateSubject: string
  /** Default 'ec-p256'. */
  readonly keyAlgorithm?: KeyAlgorithmName
  readonly validity?: { readonly rootMs?: number; readonly intermediateMs?: number }
  readonly urls?: CaUrls
}

function parseSubject(value: string, field: string): x509.Name {
  try {
    const name = new x509.Name(value)
    if (name.toJSON().length === 0) throw new Error('empty')
    return name
  } catch {
    throw new CaError('ca_config_invalid', `${field} is not a distinguished name`)
  }
}

function checkValidity(ms: number, field: string): number {
  if (!Number.isSafeInteger(ms) || ms < DAY_MS) throw new CaError('ca_config_invalid', `${field} must be at least one day`)
  return ms
}

/**
 * Creates the CA in `dir` (made 0700 if missing) and returns it loaded.
 * Throws `ca_exists` if any CA file is already there, `ca_config_invalid` /
 * `ca_passphrase_too_short` for bad input (before anything is written).
 */
export async function initCa(opts: InitCaOptions): Promise<LoadedCa> {
  const dir = resolve(opts.dir)
  checkPassphrase(opts.passphrase)
  const algorithm = opts.keyAlgorithm ?? defaultKeyAlgorithm
  const urls = parseCaUrls(opts.urls)
  const rootName = parseSubject(opts.rootSubject, 'rootSubject')
  const intermediateName = parseSubject(opts.intermediateSubject, 'intermediateSubject')
  // Chain builders find issuers by name; two CAs with one name make paths ambiguous.
  if (rootName.toString() === intermediateName.toString()) {
    throw new CaError('ca_config_invalid', 'rootSubject and intermediateSubject must differ')
  }
  const rootMs = checkValidity(opts.validity?.rootMs ?? defaultCaValidity.rootMs, 'validity.rootMs')
  const intermediateMs = checkValidity(opts.validity?.intermediateMs ?? defaultCaValidity.intermediateMs, 'validity.intermediateMs')
  if (intermediateMs > rootMs) throw new CaError('ca_config_invalid', 'the intermediate cannot outlive the root')

  const now = opts.clock.now()
  const [rootKey, intermediateKey] = await Promise.all([generateKey(algorithm), generateKey(algorithm)])
  const rootSigner = await toSigningKey(rootKey)
  const rootPublic = new x509.PublicKey(new Uint8Array(rootSigner.spkiDer))
  const intermediatePublic = new x509.PublicKey(new Uint8Array(spkiOf(intermediateKey)))
  const rootSki = await x509.SubjectKeyIdentifierExtension.create(rootPublic, false, crypto)

  const root = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: rootName,
      issuer: rootName,
      notBefore: new Date(now - backdateMs),
      notAfter: new Date(now + rootMs),
      publicKey: rootPublic,
      signingKey: rootSigner.privateKey,
      signingAlgorithm: rootSigner.signingAlgorithm,
      extensions: [
        new x509.BasicConstraintsExtension(true, 1, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        rootSki,
      ],
    },
    crypto,
  )
  const intermediateExtensions: x509.Extension[] = [
    new x509.BasicConstraintsExtension(true, 0, true),
    new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    await x509.SubjectKeyIdentifierExtension.create(intermediatePublic, false, crypto),
    new x509.AuthorityKeyIdentifierExtension(rootSki.keyId),
  ]
  if (urls.rootCrlUrl) intermediateExtensions.push(new x509.CRLDistributionPointsExtension([urls.rootCrlUrl]))
  if (urls.rootOcspUrl) intermediateExtensions.push(new x509.AuthorityInfoAccessExtension({ ocsp: [urls.rootOcspUrl] }))
  const intermediate = await x509.X509CertificateGenerator.create(
    {
      serialNumber: randomSerial(),
      subject: intermediateName,
      issuer: root.subjectName,
      notBefore: new Date(now - backdateMs),
      notAfter: new Date(now + intermediateMs),
      publicKey: intermediatePublic,
      signingKey: rootSigner.privateKey,
      signingAlgorithm: rootSigner.signingAlgorithm,
      extensions: intermediateExtensions,
    },
    crypto,
  )

  const meta: CaMeta = { version: 1, keyAlgorithm: algorithm, urls, createdAt: new Date(now).toISOString() }
  const rootPem = root.toString('pem') + '\n'
  const intermediatePem = intermediate.toString('pem') + '\n'
  const files: ReadonlyArray<readonly [string, string, number]> = [
    [caFiles.rootKey, encryptPrivateKey(rootKey, opts.passphrase), 0o600],
    [caFiles.intermediateKey, encryptPrivateKey(intermediateKey, opts.passphrase), 0o600],
    [caFiles.rootCert, rootPem, 0o644],
    [caFiles.intermediateCert, intermediatePem, 0o644],
    [caFiles.chain, intermediatePem + rootPem, 0o644],
    [caFiles.meta, JSON.stringify(meta, null, 2) + '\n', 0o644], // last: marks init as finished
  ]

  await ensurePrivateDir(dir)
  const lockPath = join(dir, caFiles.initLock)
  const lock = await open(lockPath, 'wx', 0o600).catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === 'EEXIST') throw new CaError('ca_exists', `${lockPath} exists: another init is running or one crashed`, { cause })
    throw cause
  })
  try {
    const present = new Set(await readdir(dir))
    const clash = files.map(([name]) => name).find((name) => present.has(name))
    if (clash) throw new CaError('ca_exists', join(dir, clash))
    for (const [name, data, mode] of files) {
      await writeFileAtomic(join(dir, name), data, mode, { overwrite: false }).catch((cause: NodeJS.ErrnoException) => {
        if (cause.code === 'EEXIST') throw new CaError('ca_exists', join(dir, name), { cause })
        throw cause
      })
    }
  } finally {
    await lock.close()
    await unlink(lockPath).catch(() => undefined)
  }
  return loadCa({ dir, passphrase: opts.passphrase })
}
