/**
 * File-system helpers for folders that hold private keys (the dev bootstrap's
 * data folder, the CA folder in `pki/`): a folder only its owner can enter,
 * and whole-file writes that a crash cannot leave half done.
 */
import { randomBytes } from 'node:crypto'
import { chmod, link, mkdir, open, rename, stat, unlink } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'

/**
 * Creates `dir` (and parents) if missing and makes it mode 0700.
 *
 * An existing folder owned by someone else is refused rather than used: its
 * owner could swap our keys or read them. One we own with looser bits is
 * tightened, since keys may already sit in it. Throws on anything but a folder.
 */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: 0o700 })
  const info = await stat(dir)
  if (!info.isDirectory()) throw new Error(`${dir} is not a directory`)
  const uid = process.getuid?.()
  if (uid !== undefined && info.uid !== uid) {
    throw new Error(`${dir} is owned by uid ${info.uid}, not by this user (${uid}); refusing to keep private keys there`)
  }
  if ((info.mode & 0o777) !== 0o700) await chmod(dir, 0o700)
}

/**
 * Writes `data` to `path` so that readers see either the old file or the
 * whole new one, never a part: write a temp file beside it (created with
 * O_EXCL and the final mode, so the key is never readable by others even for
 * an instant), fsync, rename over the target, fsync the folder.
 *
 * Renaming replaces a symlink at `path` instead of writing through it.
 *
 * With `{ overwrite: false }` the temp file is hard-linked to `path` instead
 * of renamed, which fails with EEXIST if anything (file, symlink) is already
 * there: a no-clobber write with no check-then-write race. Used where
 * replacing a file would lose a key (CA init, root key export).
 */
export async function writeFileAtomic(path: string, data: string, mode: number, opts: { readonly overwrite?: boolean } = {}): Promise<void> {
  const dir = dirname(path)
  const tmp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`)
  const handle = await open(tmp, 'wx', mode)
  try {
    await handle.writeFile(data, 'utf8')
    await handle.chmod(mode) // the umask may have removed bits we asked for; never adds any
    await handle.sync()
  } catch (err) {
    await handle.close()
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await handle.close()
  try {
    if (opts.overwrite === false) {
      await link(tmp, path)
      await unlink(tmp)
    } else {
      await rename(tmp, path)
    }
  } catch (err) {
    await unlink(tmp).catch(() => undefined)
    throw err
  }
  await syncDir(dir)
}

/**
 * Makes a rename or unlink in `dir` durable (exported for callers that delete
 * key files); some file systems cannot fsync a folder, which is not an error worth failing on.
 */
export async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined)
  if (!handle) return
  try {
    await handle.sync()
  } catch {
    // EINVAL/EISDIR on file systems without directory fsync: the rename still happened.
  } finally {
    await handle.close()
  }
}
