/**
 * `portcullis ca init`: creates the root and intermediate CA in `pki.caDir`.
 *
 * Decisions:
 * - The CRL and OCSP URLs default to the gateway's own `pki.http` endpoint,
 *   because that is what serves them. A bind address such as 0.0.0.0 or
 *   port 0 is not a URL a relying party can reach, so then the operator must
 *   name the URLs; without `pki.http` certificates carry no revocation
 *   pointers and the command says so.
 * - Refuses to overwrite anything (initCa's own guarantee): re-running init
 *   must never replace a root that partners already trust.
 */
import { initCa } from '../pki/ca-init.js'
import { isKeyAlgorithmName } from '../pki/keys.js'
import type { PkiConfig } from '../config/schema/index.js'
import { caExit, CaUsageError, loadCaContext, normaliseSubject, parseCaArgs, runCaCommand, stringFlag, type CaIo } from './ca-common.js'

/** Usage of `ca init`. */
export const caInitUsage = `usage: portcullis ca init --config FILE [--key-algorithm ec-p256|ec-p384|rsa-3072|rsa-4096]
       [--root-subject "/CN=..."] [--intermediate-subject "/CN=..."] [--crl-url URL] [--ocsp-url URL]`

const unroutableHosts = new Set(['0.0.0.0', '::', '[::]', ''])

/** `http://host:port/<path>` from `pki.http`, or undefined when it is not a reachable URL. */
function endpointUrl(http: PkiConfig['http'], path: string): string | undefined {
  if (!http || http.port === 0 || unroutableHosts.has(http.host)) return undefined
  const host = http.host.includes(':') && !http.host.startsWith('[') ? `[${http.host}]` : http.host
  return `http://${host}:${http.port}/${path}`
}

/** Runs `ca init`; returns the exit code. */
export function runCaInit(args: readonly string[], io: CaIo): Promise<number> {
  return runCaCommand('init', caInitUsage, io, async () => {
    const { values } = parseCaArgs(
      args,
      {
        'key-algorithm': { type: 'string' },
        'root-subject': { type: 'string' },
        'intermediate-subject': { type: 'string' },
        'crl-url': { type: 'string' },
        'ocsp-url': { type: 'string' },
      },
      false,
    )
    const algorithm = stringFlag(values, 'key-algorithm') ?? 'ec-p256'
    if (!isKeyAlgorithmName(algorithm)) throw new CaUsageError(`--key-algorithm must be one of ec-p256, ec-p384, rsa-3072, rsa-4096`)
    const rootSubject = normaliseSubject(stringFlag(values, 'root-subject') ?? 'CN=Portcullis Root CA', 'root-subject')
    const intermediateSubject = normaliseSubject(stringFlag(values, 'intermediate-subject') ?? 'CN=Portcullis Intermediate CA', 'intermediate-subject')
    const ctx = loadCaContext(values, io)
    const http = ctx.pki.http
    const crlUrl = stringFlag(values, 'crl-url') ?? endpointUrl(http, 'crl')
    const ocspUrl = stringFlag(values, 'ocsp-url') ?? endpointUrl(http, 'ocsp')
    if (http && (crlUrl === undefined || ocspUrl === undefined)) {
      throw new CaUsageError(`pki.http listens on ${http.host}:${http.port}, which relying parties cannot reach; give --crl-url and --ocsp-url`)
    }
    const ca = await initCa({
      dir: ctx.caDir,
      passphrase: ctx.passphrase(),
      clock: io.clock,
      rootSubject,
      intermediateSubject,
      keyAlgorithm: algorithm,
      urls: { ...(crlUrl === undefined ? {} : { crlUrl }), ...(ocspUrl === undefined ? {} : { ocspUrl }) },
    })
    io.out(`CA created in ${ca.dir} (${ca.keyAlgorithm})`)
    io.out(`  root:         ${ca.root.subject}  (root.crt; distribute this as the trust anchor)`)
    io.out(`  intermediate: ${ca.intermediate.subject}  (intermediate.crt; signs every certificate)`)
    io.out(`  keys are encrypted with the pki.passphrase secret, files 0600`)
    if (crlUrl === undefined && ocspUrl === undefined) io.out('  no CRL/OCSP URLs: certificates will carry no revocation pointers (set pki.http or --crl-url/--ocsp-url)')
    else io.out(`  CRL: ${crlUrl ?? '(none)'}  OCSP: ${ocspUrl ?? '(none)'}`)
    io.out(`  to keep the root key offline: portcullis ca export-root --config FILE --out /offline/root.key`)
    return caExit.ok
  })
}
