/**
 * Builds what the bench runs besides TypeScript under tsx, into a cache
 * directory keyed by the source's hash (never committed, rebuilt when the
 * source changes):
 *
 * - the LD_PRELOAD shim that gives wrk and h2load a client certificate
 *   (preload/wrk-client-cert.c, gcc against the system OpenSSL the tools use);
 * - the Node processes the bench starts (naive proxy, sink upstream, load
 *   clients), transpiled to plain JavaScript: run under tsx they would carry
 *   its loader (memory, start-up) into the figures; Portcullis itself runs
 *   from dist/ after `npm run build`.
 */
import { execFileSync } from 'node:child_process'
import { createHash } from 'node:crypto'
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import ts from 'typescript'

const benchDir = import.meta.dirname
/** node_modules/.cache is ignored by git and survives between runs. */
export const cacheDir = join(benchDir, '..', 'node_modules', '.cache', 'portcullis-bench')

const hashOf = (text: string) => createHash('sha256').update(text).digest('hex').slice(0, 12)

/** Compiles the shim once per source version; returns the .so path. */
export function buildPreload(): string {
  const source = join(benchDir, 'preload', 'wrk-client-cert.c')
  const out = join(cacheDir, `wrk-client-cert-${hashOf(readFileSync(source, 'utf8'))}.so`)
  if (existsSync(out)) return out
  mkdirSync(cacheDir, { recursive: true })
  const tmp = `${out}.${process.pid}.tmp`
  try {
    execFileSync('gcc', ['-shared', '-fPIC', '-O2', '-Wall', '-Werror', '-o', tmp, source, '-ldl', '-lssl', '-lcrypto'], { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? ''
    throw new Error(`cannot build ${source} (run scripts/setup-bench.sh for gcc and libssl-dev):\n${stderr}`)
  }
  renameSync(tmp, out)
  return out
}

/** Transpiles one self-contained bench script (type-only imports) to an .mjs; returns its path. */
export function buildScript(file: string): string {
  const source = readFileSync(join(benchDir, file), 'utf8')
  const out = join(cacheDir, `${basename(file, '.ts')}-${hashOf(source)}.mjs`)
  if (existsSync(out)) return out
  mkdirSync(cacheDir, { recursive: true })
  const { outputText } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022, verbatimModuleSyntax: true },
    fileName: file,
  })
  writeFileSync(out, outputText)
  return out
}
