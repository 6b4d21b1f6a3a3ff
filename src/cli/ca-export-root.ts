/**
 * `portcullis ca export-root --out FILE`: moves the root key out of the CA
 * folder (still encrypted, 0600) so it can be kept offline. Issuing, signing
 * and revoking keep working: they need only the intermediate. Renewing the
 * intermediate needs the key brought back.
 */
import { resolve } from 'node:path'
import { exportAndRemoveRootKey } from '../pki/ca-root-export.js'
import { caExit, loadCaContext, parseCaArgs, runCaCommand, stringFlag, type CaIo } from './ca-common.js'

/** Usage of `ca export-root`. */
export const caExportRootUsage = `usage: portcullis ca export-root --config FILE --out FILE`

/** Runs `ca export-root`; returns the exit code. */
export function runCaExportRoot(args: readonly string[], io: CaIo): Promise<number> {
  return runCaCommand('export-root', caExportRootUsage, io, async () => {
    const { values } = parseCaArgs(args, { out: { type: 'string' } }, false)
    const out = resolve(stringFlag(values, 'out', true))
    const ctx = loadCaContext(values, io)
    const { target } = await exportAndRemoveRootKey({ dir: ctx.caDir, passphrase: ctx.passphrase(), target: out })
    io.out(`root key moved to ${target} (encrypted, 0600) and removed from ${ctx.caDir}`)
    io.out('store it offline; issuing and revoking keep working, renewing the intermediate needs it back')
    return caExit.ok
  })
}
