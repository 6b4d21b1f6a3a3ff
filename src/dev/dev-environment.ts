/**
 * Everything `portcullis start` needs when it is given no config: the dev
 * PKI, the example upstream, a config file that serves it over mTLS, and two
 * curl commands to try — one with the client certificate that succeeds, one
 * without that is refused. The CLI starts the gateway with `configPath` and
 * prints the rest; it owns the returned upstream and must close it.
 */
import { join } from 'node:path'
import type { Clock } from '../shared/clock.js'
import { renderDevConfig } from './dev-config.js'
import { ensureDevPki } from './dev-pki.js'
import type { DevPki } from './dev-pki.js'
import { startExampleUpstream } from './example-upstream.js'
import type { ExampleUpstream } from './example-upstream.js'
import { writeFileAtomic } from '../shared/private-files.js'

/** Name of the generated config inside the data folder. */
export const devConfigFileName = 'portcullis.yaml'

/** The prepared demo. */
export interface DevEnvironment {
  /** Absolute path of the written config (mode 0600). */
  readonly configPath: string
  readonly configText: string
  /** The running example upstream; close it on shutdown. */
  readonly upstream: ExampleUpstream
  /** Shell-ready commands with absolute, quoted paths. */
  readonly curl: { readonly withCert: string; readonly withoutCert: string }
  /** What was found or made, so the CLI can say e.g. that a new CA must be trusted again. */
  readonly pki: DevPki
}

/**
 * Ensures the PKI in `dataDir`, starts the example upstream on a free
 * loopback port and writes `<dataDir>/portcullis.yaml` for a listener on
 * `port`. The config is rewritten every time, because the upstream's port is
 * new every time. If writing fails, the upstream is closed before the error
 * is rethrown, so nothing is left running.
 */
export async function prepareDevEnvironment(opts: { dataDir: string; port: number; clock: Clock }): Promise<DevEnvironment> {
  const pki = await ensureDevPki(opts.dataDir, { clock: opts.clock })
  const upstream = await startExampleUpstream({})
  try {
    const configText = renderDevConfig({ pki, port: opts.port, upstreamUrl: upstream.url })
    const configPath = join(pki.dir, devConfigFileName)
    // 0600: the config names key files and may later hold more (it is the user's starting point).
    await writeFileAtomic(configPath, configText, 0o600)
    const base = `https://localhost:${opts.port}`
    const sh = shellQuote
    return {
      configPath,
      configText,
      upstream,
      pki,
      curl: {
        withCert: `curl --cacert ${sh(pki.ca.certPath)} --cert ${sh(pki.client.certPath)} --key ${sh(pki.client.keyPath)} ${base}/hello`,
        withoutCert: `curl --cacert ${sh(pki.ca.certPath)} ${base}/hello`,
      },
    }
  } catch (err) {
    await upstream.close()
    throw err
  }
}

/**
 * Quotes a word for POSIX shells: left bare when it has only safe characters
 * (so typical paths print cleanly), else single-quoted with `'` as `'\''`.
 */
export function shellQuote(word: string): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(word)) return word
  return `'${word.replace(/'/g, `'\\''`)}'`
}
