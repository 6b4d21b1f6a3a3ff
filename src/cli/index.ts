#!/usr/bin/env node
/**
 * `portcullis <command>`: start, validate, reload, version. Only `start` and
 * `validate` import gateway modules directly (they need no running gateway);
 * `reload` signals a running one.
 */
import { runCa } from './ca.js'
import { runReload } from './reload.js'
import { runStart } from './start.js'
import { runValidate } from './validate.js'
import { runVersion } from './version.js'

const usage = `usage: portcullis <command> [options]

commands:
  start [--config FILE] [--data-dir DIR] [--port N] [--log-level LEVEL]
        [--workers N|auto]
        Start the gateway. Without --config, a development CA, certificates,
        an example upstream and a config are generated in --data-dir
        (default .portcullis) and curl commands are printed. --workers runs
        N data-plane processes on the same ports (auto: one per core).
  validate FILE   Check a config file; issues are printed as file:line:col.
  reload [--pid-file FILE]
        Ask a running gateway to reload its config (SIGHUP).
  version         Print the version.
  ca <init|issue|sign|list|revoke|export-root|token> --config FILE ...
        The built-in CA and its inventory (\`portcullis ca\` lists the options).
`

const commands: Record<string, (args: string[]) => Promise<number>> = {
  start: runStart,
  validate: runValidate,
  reload: runReload,
  version: runVersion,
  ca: runCa,
}

const [name, ...args] = process.argv.slice(2)
const command = name ? commands[name] : undefined
if (!command) {
  process.stderr.write(usage)
  process.exitCode = name === undefined || name === 'help' || name === '--help' ? 0 : 2
} else {
  command(args).then(
    (code) => {
      if (code !== 0) process.exitCode = code
    },
    (err: unknown) => {
      process.stderr.write(`portcullis ${name}: ${(err as Error).message}\n`)
      process.exitCode = 1
    },
  )
}
