/**
 * What every `portcullis ca <subcommand>` shares: strict argument parsing,
 * loading the gateway config and its `pki:` section, resolving the CA
 * passphrase, opening the inventory, and turning failures into exit codes.
 *
 * Decisions:
 * - Exit codes: 0 done, 1 failed (CA, config, storage), 2 usage error,
 *   3 a CSR refused by partner policy. Scripts can tell "my command line is
 *   wrong" from "the CA said no" from "something broke".
 * - The passphrase comes only from the config's secret reference (`{ env }`
 *   or `{ file }`), never from argv: command lines are visible to every user
 *   through `ps` and /proc, and end up in shell history.
 * - Unknown flags are errors (`parseArgs` strict mode): a misspelt
 *   `--valdity 1d` must not silently issue a 90-day certificate.
 */
import { readFileSync } from 'node:fs'
import { dirname, isAbsolute, resolve } from 'node:path'
import { parseArgs, type ParseArgsConfig } from 'node:util'
import { formatIssue } from '../config/issues.js'
import { loadConfig } from '../config/load.js'
import type { PkiConfig } from '../config/schema/index.js'
import { readSecret, SourceError, type SourceContext } from '../config/secrets.js'
import { openPkiStorage, type PkiStorage } from '../control/open-pki-storage.js'
import { CaError } from '../pki/ca-errors.js'
import type { Clock } from '../shared/clock.js'
import { parseDuration } from '../shared/duration.js'
import { StorageLimitError } from '../storage/types.js'

/** Exit codes of `portcullis ca`; see the file comment for why refusals have their own. */
export const caExit = { ok: 0, failed: 1, usage: 2, refused: 3 } as const

/** A mistake in the command line: printed with the subcommand's usage, exit 2. */
export class CaUsageError extends Error {
  override readonly name = 'CaUsageError'
}

/** A failure already explained to the operator in `message`; exit 1 (or `code`). */
export class CaCliFailure extends Error {
  override readonly name = 'CaCliFailure'
  constructor(
    message: string,
    readonly code: number = caExit.failed,
  ) {
    super(message)
  }
}

/** Where a subcommand writes; injected so the dispatcher owns process streams. */
export interface CaIo {
  readonly out: (line: string) => void
  readonly err: (line: string) => void
  readonly env: Readonly<Record<string, string | undefined>>
  readonly clock: Clock
}

/** The loaded `pki:` section with everything resolved against the config file's folder. */
export interface CaContext {
  readonly pki: PkiConfig
  readonly source: SourceContext
  /** Absolute CA folder. */
  readonly caDir: string
  /** Resolves the passphrase on demand (so `list` never touches it). */
  readonly passphrase: () => string
}

/**
 * `parseArgs` in strict mode with `--config` added; turns its errors into
 * usage errors. Returns the values and positionals.
 */
export function parseCaArgs<O extends NonNullable<ParseArgsConfig['options']>>(
  args: readonly string[],
  options: O,
  allowPositionals: boolean,
): { values: Record<string, string | boolean | string[] | undefined>; positionals: string[] } {
  try {
    const parsed = parseArgs({ args: [...args], options: { ...options, config: { type: 'string' } }, strict: true, allowPositionals })
    return { values: parsed.values as Record<string, string | boolean | string[] | undefined>, positionals: parsed.positionals }
  } catch (err) {
    throw new CaUsageError((err as Error).message)
  }
}

/** A string flag's value, or a usage error when it is required and missing. */
export function stringFlag(values: Record<string, unknown>, flag: string, required: true): string
export function stringFlag(values: Record<string, unknown>, flag: string, required?: false): string | undefined
export function stringFlag(values: Record<string, unknown>, flag: string, required = false): string | undefined {
  const value = values[flag]
  if (value === undefined) {
    if (required) throw new CaUsageError(`--${flag} is required`)
    return undefined
  }
  if (typeof value !== 'string' || value === '') throw new CaUsageError(`--${flag} needs a value`)
  return value
}

/** "30d", "12h" → ms; a usage error for anything else (no bare numbers: units are never guessed). */
export function durationFlag(values: Record<string, unknown>, flag: string): number | undefined {
  const text = stringFlag(values, flag)
  if (text === undefined) return undefined
  const ms = parseDuration(text)
  if (ms === undefined || ms <= 0) throw new CaUsageError(`--${flag} must be a duration such as 30d, 12h or 90m`)
  return ms
}

/**
 * Accepts a subject as a comma-separated DN ("O=b, CN=a") or in the OpenSSL
 * slash form ("/O=b/CN=a"), both in DER order (first RDN first, as
 * @peculiar/x509 reads and prints them); returns the comma form.
 * Slash-form values may not contain "," "+" or "\": escaping rules differ
 * between the two syntaxes and a mis-escaped DN is a different identity.
 */
export function normaliseSubject(text: string, flag: string): string {
  if (!text.startsWith('/')) return text
  const parts = text.slice(1).split('/')
  const rdns = parts.map((part) => {
    if (!/^[A-Za-z][A-Za-z0-9.-]*=[^,+\\]+$/.test(part)) throw new CaUsageError(`--${flag}: "${part}" is not TYPE=value (no , + or \\ in slash form)`)
    return part
  })
  // Both the slash form and @peculiar/x509's Name string list RDNs in DER order (first RDN first).
  return rdns.join(', ')
}

/**
 * Loads `--config` and returns its `pki:` section resolved. Config issues are
 * printed as file:line:col (like `validate`) and fail the command.
 */
export function loadCaContext(values: Record<string, unknown>, io: CaIo): CaContext {
  const file = stringFlag(values, 'config', true)
  const path = resolve(file)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new CaCliFailure(`cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`)
  }
  const source: SourceContext = { baseDir: dirname(path), env: io.env }
  // Only the pki section matters here; a listener may name managed certificate
  // files that `ca init` is about to make possible, so referenced files are not read.
  const loaded = loadConfig(text, file, { source, readFiles: false })
  if (!loaded.ok) {
    for (const issue of loaded.issues) io.err(formatIssue(issue))
    throw new CaCliFailure(`${file} is not a valid config`)
  }
  const pki = loaded.config.pki
  if (!pki) throw new CaCliFailure(`${file} has no \`pki:\` section; the built-in CA is configured there (caDir, passphrase, inventory)`)
  const caDir = isAbsolute(pki.caDir) ? pki.caDir : resolve(source.baseDir, pki.caDir)
  return {
    pki,
    source,
    caDir,
    passphrase: () => {
      try {
        return readSecret(pki.passphrase, source)
      } catch (err) {
        if (err instanceof SourceError) throw new CaCliFailure(`pki.passphrase: ${err.message}`)
        throw err
      }
    },
  }
}

/** Opens the inventory named by `pki.inventory`, runs `use`, and always closes it. */
export async function withInventory<T>(ctx: CaContext, io: CaIo, use: (storage: PkiStorage) => Promise<T>): Promise<T> {
  const storage = await openPkiStorage(ctx.pki.inventory, { source: ctx.source, clock: io.clock })
  try {
    return await use(storage)
  } finally {
    await storage.close()
  }
}

/**
 * Runs one subcommand and maps what it throws to an exit code and one line
 * on stderr: CaError by its stable code (never key material: CaError
 * messages carry none), usage errors with the usage text.
 */
export async function runCaCommand(name: string, usage: string, io: CaIo, body: () => Promise<number>): Promise<number> {
  try {
    return await body()
  } catch (err) {
    if (err instanceof CaUsageError) {
      io.err(`portcullis ca ${name}: ${err.message}`)
      io.err(usage)
      return caExit.usage
    }
    if (err instanceof CaCliFailure) {
      io.err(`portcullis ca ${name}: ${err.message}`)
      return err.code
    }
    if (err instanceof CaError) {
      io.err(`portcullis ca ${name}: ${err.code}: ${err.message}`)
      return caExit.failed
    }
    if (err instanceof StorageLimitError) {
      io.err(`portcullis ca ${name}: ${err.code}: ${err.message}`)
      return caExit.failed
    }
    throw err
  }
}
