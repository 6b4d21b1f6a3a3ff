/** `portcullis reload`: sends SIGHUP to the gateway named by its pid file. */
import { readFileSync } from 'node:fs'
import { parseArgs } from 'node:util'

export async function runReload(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { 'pid-file': { type: 'string', default: '.portcullis/portcullis.pid' } } })
  const file = values['pid-file']
  let pid: number
  try {
    pid = Number(readFileSync(file, 'utf8').trim())
  } catch {
    throw new Error(`no pid file at ${file}: is the gateway running? (--pid-file)`)
  }
  if (!Number.isInteger(pid) || pid <= 1) throw new Error(`${file} holds no valid pid`)
  try {
    process.kill(pid, 'SIGHUP')
  } catch (err) {
    throw new Error(`cannot signal pid ${pid}: ${(err as NodeJS.ErrnoException).code}`)
  }
  process.stdout.write(`reload requested (pid ${pid}); the gateway logs whether it was applied\n`)
  return 0
}
