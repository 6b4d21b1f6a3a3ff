/**
 * wrk as the HTTP/1.1 load client: C, one thread per event loop, far from
 * being the bottleneck at these rates (autocannon, in Node, tops out near the
 * proxies' own rates). The client certificate comes from the LD_PRELOAD shim
 * (preload/wrk-client-cert.c), which also fixes the TLS version and whether
 * reconnects resume, and reports how many handshakes resumed.
 *
 * `Connection: close` turns wrk into a handshake generator: every request
 * is answered and its connection closed, and wrk reconnects at once.
 */
import { spawn } from 'node:child_process'
import { join } from 'node:path'

/** What a wrk run measured; latencies in microseconds. */
export interface WrkResult {
  readonly requests: number
  readonly durationUs: number
  readonly errors: number
  readonly latencyUs: { readonly p50: number; readonly p99: number; readonly p999: number }
  /** From the shim: connections whose handshake finished, and how many of them resumed. */
  readonly handshakes: number
  readonly resumed: number
}

export interface WrkOptions {
  readonly url: string
  readonly connections: number
  readonly threads: number
  readonly durationS: number
  readonly preload: string
  readonly cert: string
  readonly key: string
  readonly cpus: string
  readonly tlsMax?: '1.2' | '1.3'
  readonly resume?: boolean
  readonly closeEachRequest?: boolean
}

/** Parses wrk's output: the report script's JSON line and the shim's counters. */
export function parseWrkOutput(stdout: string, stderr: string): WrkResult {
  const line = /BENCH_JSON (\{.*\})/.exec(stdout)
  if (!line) throw new Error(`wrk printed no report:\n${stdout}\n${stderr}`)
  const report = JSON.parse(line[1]!) as {
    requests: number
    durationUs: number
    errors: Record<string, number>
    latencyUs: { p50: number; p99: number; p999: number }
  }
  const tls = /BENCH_TLS handshakes=(\d+) resumed=(\d+)/.exec(stderr)
  return {
    requests: report.requests,
    durationUs: report.durationUs,
    errors: Object.values(report.errors).reduce((a, b) => a + b, 0),
    latencyUs: { p50: report.latencyUs.p50, p99: report.latencyUs.p99, p999: report.latencyUs.p999 },
    handshakes: tls ? Number(tls[1]) : 0,
    resumed: tls ? Number(tls[2]) : 0,
  }
}

/** Runs wrk once; rejects when it fails or runs far past its duration. */
export function runWrk(opts: WrkOptions): Promise<WrkResult> {
  const args = ['-c', opts.cpus, 'wrk', '-t', String(opts.threads), '-c', String(opts.connections), '-d', `${opts.durationS}s`,
    '--timeout', '5s', '-s', join(import.meta.dirname, 'wrk-report.lua')]
  if (opts.closeEachRequest) args.push('-H', 'Connection: close')
  args.push(opts.url)
  const env = {
    ...process.env,
    LD_PRELOAD: opts.preload,
    WRK_CLIENT_CERT: opts.cert,
    WRK_CLIENT_KEY: opts.key,
    WRK_TLS_MAX: opts.tlsMax ?? '',
    WRK_TLS_RESUME: opts.resume ? '1' : '0',
  }
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()))
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), (opts.durationS + 30) * 1000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`wrk exited with ${code}:\n${stderr}`))
      try {
        resolve(parseWrkOutput(stdout, stderr))
      } catch (err) {
        reject(err as Error)
      }
    })
  })
}
