/**
 * Helpers for the CA integration tests (pki-*.test.ts): a fresh CA in a temp
 * folder, the openssl CLI as the independent judge, and folder snapshots to
 * prove an operation changed nothing.
 */
import { spawnSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { initCa } from '../../src/pki/ca-init.js'
import type { InitCaOptions } from '../../src/pki/ca-init.js'
import type { LoadedCa } from '../../src/pki/ca-load.js'
import { FixedClock } from '../../src/shared/clock.js'

/** Passphrase used by every test CA (long enough for `minPassphraseLength`). */
export const passphrase = 'test-passphrase-0123456789'

/** URLs written into test CAs, asserted in the extensions. */
export const urls = {
  crlUrl: 'http://pki.test/intermediate.crl',
  ocspUrl: 'http://pki.test/ocsp',
  rootCrlUrl: 'http://pki.test/root.crl',
  rootOcspUrl: 'http://pki.test/root-ocsp',
} as const

/** A pinned clock at the real current time, so openssl (which uses the wall clock) agrees on validity. */
export function testClock(): FixedClock {
  return new FixedClock(Date.now())
}

/** A temp folder for one test. */
export function tempDir(prefix = 'portcullis-ca-'): string {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** A new CA in `<tmp>/ca` with the test URLs. */
export async function newCa(overrides: Partial<InitCaOptions> = {}): Promise<{ ca: LoadedCa; dir: string; work: string; clock: FixedClock }> {
  const work = tempDir()
  const dir = join(work, 'ca')
  const clock = testClock()
  const ca = await initCa({
    dir,
    passphrase,
    clock,
    rootSubject: 'CN=Portcullis Test Root, O=Portcullis Test',
    intermediateSubject: 'CN=Portcullis Test Issuing, O=Portcullis Test',
    urls,
    ...overrides,
  })
  return { ca, dir, work, clock }
}

/** Runs openssl; never throws, so tests can assert on failure too. */
export function openssl(args: readonly string[], input?: string): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync('openssl', args, { encoding: 'utf8', input: input ?? '', timeout: 20_000 })
  return { status: r.status, stdout: r.stdout, stderr: r.stderr }
}

/** Writes `text` to `dir/name` and returns the path. */
export function put(dir: string, name: string, text: string): string {
  const path = join(dir, name)
  writeFileSync(path, text)
  return path
}

/** `openssl x509 -text -noout` of a PEM. */
export function x509Text(work: string, pem: string): string {
  const r = openssl(['x509', '-noout', '-text', '-in', put(work, `text-${createHash('sha256').update(pem).digest('hex').slice(0, 12)}.pem`, pem)])
  if (r.status !== 0) throw new Error(`openssl x509 failed: ${r.stderr}`)
  return r.stdout
}

/** The value lines under an extension heading in `openssl x509 -text` output ('' when absent). */
export function extension(text: string, heading: string): string {
  const lines = text.split('\n')
  const start = lines.findIndex((l) => l.trim().startsWith(heading))
  if (start === -1) return ''
  const out: string[] = [lines[start]!.trim()]
  for (const line of lines.slice(start + 1)) {
    if (/^ {12}\S/.test(line) || /^ {4}Signature/.test(line)) break
    out.push(line.trim())
  }
  return out.join('\n')
}

/** Name, mode and SHA-256 of every file in `dir`, to show an operation changed nothing. */
export function snapshot(dir: string): Record<string, string> {
  const out: Record<string, string> = {}
  for (const name of readdirSync(dir).sort()) {
    const path = join(dir, name)
    out[name] = `${(statSync(path).mode & 0o777).toString(8)} ${createHash('sha256').update(readFileSync(path)).digest('hex')}`
  }
  return out
}
