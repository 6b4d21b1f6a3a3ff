/** `portcullis start`: runs the gateway in the foreground until SIGTERM/SIGINT. */
import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { parseWorkerCount } from '../cluster/worker-count.js'
import { start } from '../main.js'

export async function runStart(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      config: { type: 'string', short: 'c' },
      'data-dir': { type: 'string', default: '.portcullis' },
      port: { type: 'string', default: '8443' },
      'log-level': { type: 'string', default: 'info' },
      'pid-file': { type: 'string' },
      workers: { type: 'string', default: '1' },
    },
    strict: true,
  })
  const dataDir = values['data-dir']
  const port = Number(values.port)
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port: expected 0-65535, got ${values.port}`)
  await start({
    configPath: values.config,
    dataDir,
    devPort: port,
    logLevel: values['log-level'],
    pidFile: values['pid-file'] ?? join(dataDir, 'portcullis.pid'),
    workers: parseWorkerCount(values.workers, availableParallelism()),
  })
  return process.exitCode === 1 ? 1 : 0
}
