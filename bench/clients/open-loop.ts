/**
 * An open-loop HTTP/1.1 load client: requests are due at a fixed rate
 * whether or not earlier ones were answered, and each latency is measured
 * from when its request was due, not from when a connection was free to send
 * it (wrk2's correction for coordinated omission). A proxy that stalls cannot
 * hide the queue it builds: the waiting shows up in the percentiles.
 *
 * Debian's wrk has no `-R` and h2load's `--rate` paces connections, not
 * requests, hence this client. It is Node, so its timer ticks every
 * millisecond: a request is sent up to ~1 ms after it was due, which is
 * counted in its latency — the same offset for every proxy (docs/benchmarks.md).
 *
 * Run as its own process, pinned to the load client's core:
 *   node open-loop.js <options.json>   → one JSON line on stdout
 */
import { readFileSync } from 'node:fs'
import { connect, type TLSSocket } from 'node:tls'

/** Options read from the JSON file. */
export interface OpenLoopOptions {
  readonly port: number
  readonly path: string
  readonly ratePerSecond: number
  readonly durationS: number
  readonly connections: number
  readonly cert: string
  readonly key: string
  readonly ca: string
}

interface Conn {
  readonly socket: TLSSocket
  buffer: Buffer
  /** When the request in flight was due; undefined when idle. */
  dueAt: number | undefined
}

/** stats.ts's percentile, repeated: this script runs on its own, without the bench's modules. */
function nearestRank(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return Number.NaN
  return sorted[Math.min(sorted.length, Math.max(1, Math.ceil((p * sorted.length) / 100 - 1e-9))) - 1]!
}

async function main(opts: OpenLoopOptions): Promise<void> {
  const request = Buffer.from(`GET ${opts.path} HTTP/1.1\r\nHost: localhost\r\n\r\n`)
  const tlsOptions = { host: '127.0.0.1', port: opts.port, servername: 'localhost', cert: readFileSync(opts.cert), key: readFileSync(opts.key), ca: readFileSync(opts.ca) }
  const total = Math.floor(opts.ratePerSecond * opts.durationS)
  const latencies = new Float64Array(total)
  let answered = 0
  let failed = 0
  const idle: Conn[] = []
  const waiting: number[] = [] // due times of requests no connection was free for
  const send = (c: Conn, dueAt: number) => {
    c.dueAt = dueAt
    c.socket.write(request)
  }
  const onResponse = (c: Conn, status: number) => {
    latencies[answered + failed] = performance.now() - c.dueAt!
    if (status === 200) answered++
    else failed++
    c.dueAt = undefined
    const next = waiting.shift()
    if (next !== undefined) send(c, next)
    else idle.push(c)
  }
  const conns = await Promise.all(
    Array.from({ length: opts.connections }, () => new Promise<Conn>((resolve, reject) => {
      const socket = connect(tlsOptions, () => resolve(c))
      const c: Conn = { socket, buffer: Buffer.alloc(0), dueAt: undefined }
      socket.once('error', reject)
      socket.on('data', (data: Buffer) => {
        c.buffer = c.buffer.length === 0 ? data : Buffer.concat([c.buffer, data])
        for (;;) {
          const end = c.buffer.indexOf('\r\n\r\n')
          if (end < 0) return
          const head = c.buffer.subarray(0, end).toString('latin1')
          const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0)
          if (c.buffer.length < end + 4 + length) return
          c.buffer = c.buffer.subarray(end + 4 + length)
          onResponse(c, Number(head.slice(9, 12)))
        }
      })
    })),
  )
  idle.push(...conns)
  const start = performance.now()
  const intervalMs = 1000 / opts.ratePerSecond
  let issued = 0
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now()
      while (issued < total && start + issued * intervalMs <= now) {
        const dueAt = start + issued * intervalMs
        issued++
        const c = idle.pop()
        if (c) send(c, dueAt)
        else waiting.push(dueAt)
      }
      if (answered + failed >= total) return resolve()
      // Past the end plus a grace period, what is still unanswered counts as lost.
      if (now - start > (opts.durationS + 10) * 1000) return resolve()
      setTimeout(tick, 1)
    }
    tick()
  })
  const done = answered + failed
  const sorted = latencies.subarray(0, done).sort()
  const us = (ms: number) => Math.round(ms * 1000)
  process.stdout.write(`${JSON.stringify({
    requests: answered,
    errors: failed + (total - done),
    achievedRate: done / ((performance.now() - start) / 1000),
    latencyUs: { p50: us(nearestRank(sorted, 50)), p99: us(nearestRank(sorted, 99)), p999: us(nearestRank(sorted, 99.9)) },
  })}\n`)
  for (const c of conns) c.socket.destroy()
}

main(JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as OpenLoopOptions).catch((err: unknown) => {
  process.stderr.write(`open-loop: ${(err as Error).message}\n`)
  process.exit(1)
})
