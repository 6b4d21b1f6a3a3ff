/**
 * The processes one bench run starts (upstream, proxies, load clients), and
 * their cleanup. Each child gets its own process group, so stopping it stops
 * what it forked too (nginx's worker, a cluster's workers); a Ctrl-C, a
 * SIGTERM or a crash of the bench stops every group still running, so no
 * nginx or HAProxy outlives a run.
 *
 * Pinning: `cpus` runs the command under `taskset -c`, which execs it, so the
 * pid we hold is the process itself.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { closeSync, openSync, readFileSync } from 'node:fs'
import { createConnection, createServer, type Server } from 'node:net'

/** A started child. `exited` resolves with its exit code (null when signalled). */
export interface Spawned {
  readonly name: string
  readonly pid: number
  readonly exited: Promise<number | null>
  /** Where its stdout and stderr go. */
  readonly logFile: string
  stop(): Promise<void>
}

export interface SpawnOptions {
  /** CPU list for taskset, e.g. "1" or "0-1"; absent: not pinned. */
  readonly cpus?: string
  readonly env?: NodeJS.ProcessEnv
  readonly cwd?: string
}

const running = new Set<ChildProcess>()
let stoppedBy: NodeJS.Signals | undefined

/** The signal that is stopping the bench, if any: what fails after it is a consequence, not news. */
export function interruptedBy(): NodeJS.Signals | undefined {
  return stoppedBy
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
  try {
    process.kill(-child.pid, signal)
  } catch {
    // already gone
  }
}

let isCleanupInstalled = false
function installCleanup(): void {
  if (isCleanupInstalled) return
  isCleanupInstalled = true
  process.on('exit', () => {
    for (const child of running) killGroup(child, 'SIGKILL')
  })
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.on(signal, () => {
      stoppedBy = signal
      process.stderr.write(`\nbench: ${signal}: stopping ${running.size} processes\n`)
      for (const child of running) killGroup(child, 'SIGTERM')
      setTimeout(() => process.exit(130), 1000).unref()
    })
  }
}

/** Starts `command` with output to `logFile`; the child is stopped on our exit. */
export function startProcess(name: string, command: string, args: readonly string[], logFile: string, opts: SpawnOptions = {}): Spawned {
  installCleanup()
  const [cmd, argv] = opts.cpus ? ['taskset', ['-c', opts.cpus, command, ...args]] : [command, [...args]]
  const out = openSync(logFile, 'a')
  const child = spawn(cmd, argv, { detached: true, stdio: ['ignore', out, out], env: opts.env ?? process.env, cwd: opts.cwd })
  closeSync(out)
  if (child.pid === undefined) throw new Error(`${name}: could not start ${command}`)
  running.add(child)
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      running.delete(child)
      resolve(code)
    })
  })
  return {
    name,
    pid: child.pid,
    exited,
    logFile,
    async stop() {
      killGroup(child, 'SIGTERM')
      const timer = setTimeout(() => killGroup(child, 'SIGKILL'), 5000)
      await exited
      clearTimeout(timer)
    },
  }
}

/** Resolves once 127.0.0.1:`port` accepts a connection; rejects if the process exits or `timeoutMs` passes. */
export async function waitForPort(proc: Spawned, port: number, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  let hasExited = false
  void proc.exited.then(() => (hasExited = true))
  for (;;) {
    const isOpen = await new Promise<boolean>((resolve) => {
      const socket = createConnection({ host: '127.0.0.1', port }, () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (isOpen) return
    if (hasExited || Date.now() > deadline) {
      const tail = readFileSync(proc.logFile, 'utf8').split('\n').slice(-15).join('\n')
      throw new Error(`${proc.name} ${hasExited ? 'exited' : 'did not listen'} on 127.0.0.1:${port}; its log (${proc.logFile}) ends:\n${tail}`)
    }
    await new Promise((r) => setTimeout(r, 100))
  }
}

/** `count` distinct free loopback ports (bound together at port 0, then released). */
export async function freePorts(count: number): Promise<number[]> {
  const servers: Server[] = []
  const ports: number[] = []
  for (let i = 0; i < count; i++) {
    const server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    servers.push(server)
    ports.push((server.address() as { port: number }).port)
  }
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))))
  return ports
}
