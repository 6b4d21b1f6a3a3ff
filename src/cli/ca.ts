/**
 * `portcullis ca <subcommand>`: the operator's interface to the built-in CA
 * and its inventory. Each subcommand lives in its own file (ca-<name>.ts);
 * this file only dispatches and binds them to the process's streams,
 * environment and clock (the composition root for the CLI).
 */
import { systemClock } from '../shared/clock.js'
import { caExit, type CaIo } from './ca-common.js'
import { caExportRootUsage, runCaExportRoot } from './ca-export-root.js'
import { caInitUsage, runCaInit } from './ca-init.js'
import { caIssueUsage, runCaIssue } from './ca-issue.js'
import { caListUsage, runCaList } from './ca-list.js'
import { caRevokeUsage, runCaRevoke } from './ca-revoke.js'
import { caSignUsage, runCaSign } from './ca-sign.js'
import { caTokenUsage, runCaToken } from './ca-token.js'

const subcommands: Record<string, (args: readonly string[], io: CaIo) => Promise<number>> = {
  init: runCaInit,
  issue: runCaIssue,
  sign: runCaSign,
  list: runCaList,
  revoke: runCaRevoke,
  'export-root': runCaExportRoot,
  token: runCaToken,
}

/** Usage of every `ca` subcommand, for `portcullis ca` without one. */
export const caUsage = [
  'portcullis ca: the built-in CA (config section pki:). The passphrase comes from pki.passphrase, never from the command line.',
  caInitUsage,
  caIssueUsage,
  caSignUsage,
  caListUsage,
  caRevokeUsage,
  caExportRootUsage,
  caTokenUsage,
  'exit codes: 0 done, 1 failed, 2 usage error, 3 CSR refused by partner policy',
].join('\n')

/** Entry point of `portcullis ca`; returns the exit code. */
export async function runCa(args: string[]): Promise<number> {
  const [name, ...rest] = args
  const run = name !== undefined && Object.hasOwn(subcommands, name) ? subcommands[name] : undefined
  if (!run) {
    process.stderr.write(`${caUsage}\n`)
    return name === undefined || name === 'help' || name === '--help' ? caExit.ok : caExit.usage
  }
  const io: CaIo = {
    out: (line) => process.stdout.write(`${line}\n`),
    err: (line) => process.stderr.write(`${line}\n`),
    env: process.env,
    clock: systemClock,
  }
  return run(rest, io)
}
