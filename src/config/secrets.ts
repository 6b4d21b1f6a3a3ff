/**
 * Resolves PEM and secret references (`{ file }`, `{ pem }`, `{ env }`) at
 * compile time. The environment is passed in (main.ts reads process.env), so
 * no module below main reads it directly.
 */
import { closeSync, constants, fstatSync, openSync, readFileSync } from 'node:fs'
import { isAbsolute, resolve } from 'node:path'
import type { PemSource, SecretRef } from './schema/common.js'

/** Where relative paths start and where `{ env }` looks. */
export interface SourceContext {
  /** Directory of the config file. */
  readonly baseDir: string
  readonly env: Readonly<Record<string, string | undefined>>
}

/** A reference that cannot be read; the message names the file or variable, never its content. */
export class SourceError extends Error {
  override name = 'SourceError'
}

/** Largest file a reference may name; trust bundles are the biggest real ones (a few hundred KiB). */
export const maxSourceFileBytes = 1024 * 1024

/**
 * Reads a referenced file. Only regular files, and only up to
 * {@link maxSourceFileBytes}: a path like /dev/zero or a FIFO would otherwise
 * hang or exhaust memory at load time. Opened non-blocking (a FIFO would
 * block open() until a writer appears) and checked on the open descriptor, so
 * the file checked is the file read.
 */
function readPath(path: string, ctx: SourceContext): string {
  return readSourceFile(path, ctx).toString('utf8')
}

/**
 * A file named by the config (relative to it), read as readPath reads it,
 * with another size bound: `limit` names the config field that sets it, for
 * the message (CRL files: `maxCrlSize`). Throws SourceError.
 */
export function readSourceFile(path: string, ctx: SourceContext, limit?: { readonly maxBytes: number; readonly field: string }): Buffer {
  const full = isAbsolute(path) ? path : resolve(ctx.baseDir, path)
  let fd: number | undefined
  try {
    fd = openSync(full, constants.O_RDONLY | constants.O_NONBLOCK)
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new SourceError(`cannot read ${full}: not a regular file`)
    if (limit && stat.size > limit.maxBytes) throw new SourceError(`cannot read ${full}: ${stat.size} bytes, more than ${limit.field} ${limit.maxBytes}`)
    if (!limit && stat.size > maxSourceFileBytes) throw new SourceError(`cannot read ${full}: larger than ${maxSourceFileBytes} bytes`)
    return readFileSync(fd)
  } catch (err) {
    if (err instanceof SourceError) throw err
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new SourceError(`cannot read ${full}: ${code}`)
  } finally {
    if (fd !== undefined) closeSync(fd)
  }
}

function readEnv(name: string, ctx: SourceContext): string {
  const value = ctx.env[name]
  if (value === undefined || value === '') throw new SourceError(`environment variable ${name} is not set`)
  return value
}

/** PEM text from a source. Throws SourceError when unreadable or not PEM. */
export function readPem(source: PemSource, ctx: SourceContext): string {
  const text = 'file' in source ? readPath(source.file, ctx) : 'env' in source ? readEnv(source.env, ctx) : source.pem
  if (!text.includes('-----BEGIN ')) {
    const where = 'file' in source ? source.file : 'env' in source ? `$${source.env}` : 'inline pem'
    throw new SourceError(`${where} holds no PEM block`)
  }
  return text
}

/** A secret's value, with one trailing newline removed (files written by `echo`). */
export function readSecret(ref: SecretRef, ctx: SourceContext): string {
  const text = 'file' in ref ? readPath(ref.file, ctx) : readEnv(ref.env, ctx)
  return text.replace(/\r?\n$/, '')
}
