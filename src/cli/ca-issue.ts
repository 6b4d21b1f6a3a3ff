/**
 * `portcullis ca issue`: the CA generates a key pair and a certificate for
 * the operator, writes them to `--out-dir` and records the certificate in
 * the inventory.
 *
 * Decisions:
 * - Files: cert.pem (the leaf), chain.pem (intermediate then root),
 *   fullchain.pem (leaf then intermediate: what a TLS server presents) and
 *   key.pem (0600). None may exist yet: an issue never overwrites a key.
 * - The key is encrypted (PKCS#8, AES-256-CBC) with a passphrase of its own
 *   (`--key-passphrase-env NAME` or `--key-passphrase-file FILE`, never from
 *   argv, like the CA's), else with the CA passphrase, else not at all with
 *   `--plain-key`; the output says which, so nobody deploys a key they cannot
 *   open or leaves an unencrypted one lying around unknowingly. A key handed
 *   to someone else should get its own passphrase: the CA passphrase must
 *   never travel with it. For third parties prefer `ca sign` with their own
 *   CSR, so their key never exists here at all.
 * - Order: issue in memory → record in the inventory → write the files. A
 *   certificate that exists on disk is always in the inventory (so it can be
 *   listed and revoked); a failed write leaves at worst an inventory record
 *   of a certificate nobody holds.
 * - `--subject` is a DN ("CN=a, O=b" or "/O=b/CN=a") or a bare common name;
 *   a bare name with `--profile partner` becomes "O=<partner>, CN=<name>".
 * - `--partner` must name a partner in `pki.partners`: the inventory is
 *   filtered by partner, and a typo would hide a certificate from
 *   `ca list --partner`.
 */
import { toInventoryRecord } from '../control/inventory-record.js'
import { access, mkdir } from 'node:fs/promises'
import { join, resolve } from 'node:path'
import type { SecretRef } from '../config/schema/common.js'
import { readSecret, SourceError } from '../config/secrets.js'
import { issueCertificate } from '../pki/ca-issue.js'
import { loadCa } from '../pki/ca-load.js'
import type { San } from '../pki/ca-names.js'
import { checkPassphrase, isKeyAlgorithmName } from '../pki/keys.js'
import { isProfileName } from '../pki/profiles.js'
import { writeFileAtomic } from '../shared/private-files.js'
import {
  caExit,
  CaCliFailure,
  CaUsageError,
  durationFlag,
  loadCaContext,
  normaliseSubject,
  parseCaArgs,
  runCaCommand,
  stringFlag,
  withInventory,
  type CaIo,
} from './ca-common.js'

/** Usage of `ca issue`. */
export const caIssueUsage = `usage: portcullis ca issue --config FILE --profile server|client|partner|spiffe|ocsp_signer --subject CN|DN
       [--san DNS:name --san URI:spiffe://... --san IP:addr --san email:addr ...] [--validity 30d]
       [--partner NAME] [--key-algorithm ec-p256|ec-p384|rsa-3072|rsa-4096] --out-dir DIR
       [--key-passphrase-env NAME | --key-passphrase-file FILE | --plain-key]`

/** Output file names inside --out-dir. */
export const issuedFiles = { cert: 'cert.pem', chain: 'chain.pem', fullchain: 'fullchain.pem', key: 'key.pem' } as const

const sanTypes: Record<string, San['type']> = { dns: 'dns', uri: 'uri', ip: 'ip', email: 'email' }

/** "DNS:x" → { type: 'dns', value: 'x' }; the type prefix is case-insensitive, the value is kept as given. */
export function parseSanFlag(text: string): San {
  const colon = text.indexOf(':')
  const type = colon > 0 ? sanTypes[text.slice(0, colon).toLowerCase()] : undefined
  const value = colon > 0 ? text.slice(colon + 1) : ''
  if (!type || value === '') throw new CaUsageError(`--san "${text}" must be DNS:name, URI:uri, IP:address or email:address`)
  return { type, value }
}

/** Runs `ca issue`; returns the exit code. */
export function runCaIssue(args: readonly string[], io: CaIo): Promise<number> {
  return runCaCommand('issue', caIssueUsage, io, async () => {
    const { values } = parseCaArgs(
      args,
      {
        profile: { type: 'string' },
        subject: { type: 'string' },
        san: { type: 'string', multiple: true },
        validity: { type: 'string' },
        partner: { type: 'string' },
        'key-algorithm': { type: 'string' },
        'out-dir': { type: 'string' },
        'plain-key': { type: 'boolean' },
        'key-passphrase-env': { type: 'string' },
        'key-passphrase-file': { type: 'string' },
      },
      false,
    )
    const profile = stringFlag(values, 'profile', true)
    if (!isProfileName(profile)) throw new CaUsageError(`--profile must be one of server, client, partner, spiffe, ocsp_signer`)
    const subjectText = stringFlag(values, 'subject', true)
    const partner = stringFlag(values, 'partner')
    const subject = subjectText.includes('=')
      ? normaliseSubject(subjectText, 'subject')
      : profile === 'partner' && partner !== undefined
        ? `O=${escapeDnValue(partner)}, CN=${escapeDnValue(subjectText)}`
        : `CN=${escapeDnValue(subjectText)}`
    const sans = ((values.san as string[] | undefined) ?? []).map(parseSanFlag)
    const validityMs = durationFlag(values, 'validity')
    const keyAlgorithm = stringFlag(values, 'key-algorithm') ?? 'ec-p256'
    if (!isKeyAlgorithmName(keyAlgorithm)) throw new CaUsageError(`--key-algorithm must be one of ec-p256, ec-p384, rsa-3072, rsa-4096`)
    const outDir = resolve(stringFlag(values, 'out-dir', true))
    const plainKey = values['plain-key'] === true
    const keyPassphraseRef = keyPassphraseFlag(values, plainKey)

    const ctx = loadCaContext(values, io)
    if (partner !== undefined && ctx.pki.partners[partner] === undefined) {
      throw new CaCliFailure(`unknown partner "${partner}"; known partners: ${Object.keys(ctx.pki.partners).join(', ') || '(none configured in pki.partners)'}`)
    }
    const paths = {
      cert: join(outDir, issuedFiles.cert),
      chain: join(outDir, issuedFiles.chain),
      fullchain: join(outDir, issuedFiles.fullchain),
      key: join(outDir, issuedFiles.key),
    }
    for (const path of Object.values(paths)) {
      const exists = await access(path).then(
        () => true,
        () => false,
      )
      if (exists) throw new CaCliFailure(`${path} already exists; refusing to overwrite it`)
    }

    const passphrase = ctx.passphrase()
    // Read before anything is issued or recorded, so a missing secret changes nothing.
    const keyPassphrase = keyPassphraseRef && readKeyPassphrase(keyPassphraseRef, io)
    const ca = await loadCa({ dir: ctx.caDir, passphrase })
    const issued = await issueCertificate(ca, {
      profile,
      subject,
      sans,
      keyAlgorithm,
      clock: io.clock,
      ...(validityMs === undefined ? {} : { validityMs }),
      ...(partner === undefined ? {} : { partner }),
      ...(plainKey ? { plainKey: true } : { keyPassphrase: keyPassphrase ?? passphrase }),
    })
    // Created 0700 when missing (after the passphrase proved right, so a failure leaves nothing behind);
    // an existing folder keeps its mode (it may be shared, e.g. /etc/ssl).
    await mkdir(outDir, { recursive: true, mode: 0o700 })
    await withInventory(ctx, io, (storage) => storage.inventory.add(toInventoryRecord(issued.record)))

    const intermediatePem = ca.intermediate.toString('pem') + '\n'
    await writeFileAtomic(paths.key, issued.keyPem, 0o600, { overwrite: false })
    await writeFileAtomic(paths.cert, issued.certPem, 0o644, { overwrite: false })
    await writeFileAtomic(paths.chain, issued.chainPem, 0o644, { overwrite: false })
    await writeFileAtomic(paths.fullchain, issued.certPem + intermediatePem, 0o644, { overwrite: false })

    const r = issued.record
    io.out(`issued ${r.profile} certificate serial ${r.serial}`)
    io.out(`  subject:   ${r.subject}`)
    if (r.sans.length > 0) io.out(`  SANs:      ${toInventoryRecord(r).sans.join(', ')}`)
    io.out(`  not after: ${new Date(r.notAfter).toISOString()}`)
    io.out(`  cert:      ${paths.cert}`)
    io.out(`  chain:     ${paths.chain} (intermediate, root)`)
    io.out(`  fullchain: ${paths.fullchain} (leaf, intermediate)`)
    io.out(
      plainKey
        ? `  key:       ${paths.key} (0600, NOT encrypted: --plain-key)`
        : keyPassphraseRef
          ? `  key:       ${paths.key} (0600, encrypted with the passphrase from ${'env' in keyPassphraseRef ? `$${keyPassphraseRef.env}` : keyPassphraseRef.file})`
          : `  key:       ${paths.key} (0600, encrypted with the CA passphrase)`,
    )
    io.out(`  recorded in the inventory`)
    return caExit.ok
  })
}

/** The key's own passphrase source, if one was given; at most one of the three key flags. */
function keyPassphraseFlag(values: Record<string, unknown>, plainKey: boolean): SecretRef | undefined {
  const env = stringFlag(values, 'key-passphrase-env')
  const file = stringFlag(values, 'key-passphrase-file')
  if ([env, file, plainKey ? true : undefined].filter((v) => v !== undefined).length > 1) {
    throw new CaUsageError('give at most one of --key-passphrase-env, --key-passphrase-file and --plain-key')
  }
  return env !== undefined ? { env } : file !== undefined ? { file } : undefined
}

/** Reads the key's passphrase (relative files from the working directory) and checks its strength. */
function readKeyPassphrase(ref: SecretRef, io: CaIo): string {
  const flag = 'env' in ref ? '--key-passphrase-env' : '--key-passphrase-file'
  let value: string
  try {
    value = readSecret(ref, { baseDir: process.cwd(), env: io.env })
  } catch (err) {
    if (err instanceof SourceError) throw new CaCliFailure(`${flag}: ${err.message}`)
    throw err
  }
  try {
    checkPassphrase(value)
  } catch (err) {
    throw new CaCliFailure(`${flag}: ${(err as Error).message}`)
  }
  return value
}

/** Escapes an RFC 4514 attribute value (a bare --subject or partner name). */
function escapeDnValue(value: string): string {
  return value.replace(/([,+"\\<>;=])/g, '\\$1').replace(/^([ #])/, '\\$1').replace(/ $/, '\\ ')
}
