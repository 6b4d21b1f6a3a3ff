/**
 * Takes the root key offline: copies it (still encrypted) to a path the
 * operator chooses — a removable disk, an HSM import staging area — and
 * deletes it from the CA folder. Issuing needs only the intermediate, so the
 * gateway keeps working; renewing the intermediate needs the root key back.
 *
 * Order matters so no step can lose the key: check the passphrase opens it
 * (a typo must not move a key nobody can open), write the copy no-clobber
 * and 0600, read it back and compare bytes, and only then unlink the
 * original and fsync the folder.
 */
import { readFile, unlink } from 'node:fs/promises'
import { dirname, join, resolve } from 'node:path'
import { syncDir, writeFileAtomic } from '../shared/private-files.js'
import { CaError } from './ca-errors.js'
import { caFiles } from './ca-files.js'
import { loadCa } from './ca-load.js'
import { decryptPrivateKey, spkiOf } from './keys.js'

/** What `exportAndRemoveRootKey` needs. `target` must not exist; its folder must. */
export interface ExportRootKeyOptions {
  readonly dir: string
  readonly passphrase: string
  readonly target: string
}

/**
 * Moves root.key from the CA folder to `target`. Throws
 * `ca_passphrase_invalid`, `ca_root_key_absent`, `ca_export_target_exists`
 * or `ca_corrupt` without changing anything.
 */
export async function exportAndRemoveRootKey(opts: ExportRootKeyOptions): Promise<{ readonly target: string }> {
  const dir = resolve(opts.dir)
  const target = resolve(opts.target)
  const ca = await loadCa({ dir, passphrase: opts.passphrase }) // same passphrase; also proves the folder is whole
  const source = join(dir, caFiles.rootKey)
  let pem: string
  try {
    pem = await readFile(source, 'utf8')
  } catch (cause) {
    throw new CaError('ca_root_key_absent', source, { cause })
  }
  const key = decryptPrivateKey(pem, opts.passphrase, caFiles.rootKey)
  if (!spkiOf(key).equals(Buffer.from(ca.root.publicKey.rawData))) throw new CaError('ca_corrupt', `${caFiles.rootKey} does not match ${caFiles.rootCert}`)

  await writeFileAtomic(target, pem, 0o600, { overwrite: false }).catch((cause: NodeJS.ErrnoException) => {
    if (cause.code === 'EEXIST') throw new CaError('ca_export_target_exists', target, { cause })
    throw cause
  })
  const copy = await readFile(target, 'utf8')
  if (copy !== pem) throw new CaError('ca_corrupt', `the copy at ${target} differs from the original; root key left in place`)
  await unlink(source)
  await syncDir(dir)
  await syncDir(dirname(target))
  return { target }
}
