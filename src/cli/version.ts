/** `portcullis version`: the package version and the Node/OpenSSL it runs on. */
import { readFileSync } from 'node:fs'

export async function runVersion(): Promise<number> {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
  process.stdout.write(`portcullis ${pkg.version} (node ${process.versions.node}, openssl ${process.versions.openssl})\n`)
  return 0
}
