/**
 * Resolves PEM and secret references (`{ file }`, `{ pem }`, `{ env }`) at
 * compile time. The environment is passed in (main.ts reads process.env), so
 * no module below main reads it directly.
 */
import { readFileSync } from 'node:fs'
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

function readPath(path: string, ctx: SourceContext): string {
  const full = isAbsolute(path) ? path : resolve(ctx.baseDir, path)
  try {
    return readFileSync(full, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? 'unknown error'
    throw new SourceError(`cannot read ${full}: ${code}`)
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
