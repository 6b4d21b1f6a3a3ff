/**
 * h2load (nghttp2) as the HTTP/2 load client, with the same client
 * certificate shim as wrk. h2load prints no percentiles, so it writes one
 * line per request (`--log-file`: start, status, microseconds to the end of
 * the response) and the percentiles are computed from those.
 */
import { spawn } from 'node:child_process'
import { readFileSync, rmSync } from 'node:fs'
import { percentile } from '../stats.js'

export interface H2loadResult {
  readonly requests: number
  readonly durationUs: number
  readonly errors: number
  readonly latencyUs: { readonly p50: number; readonly p99: number; readonly p999: number }
}

export interface H2loadOptions {
  readonly url: string
  readonly connections: number
  readonly streamsPerConnection: number
  readonly durationS: number
  readonly preload: string
  readonly cert: string
  readonly key: string
  readonly cpus: string
  readonly logFile: string
}

/** Parses h2load's per-request log (tab-separated: start µs, status, duration µs). */
export function parseH2loadLog(text: string, durationS: number): H2loadResult {
  const latencies: number[] = []
  let errors = 0
  for (const line of text.split('\n')) {
    if (!line) continue
    const [, status, micros] = line.split('\t')
    if (status !== '200') errors++
    else latencies.push(Number(micros))
  }
  const sorted = Float64Array.from(latencies).sort()
  return {
    requests: latencies.length,
    durationUs: durationS * 1_000_000,
    errors,
    latencyUs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), p999: percentile(sorted, 99.9) },
  }
}

/** Runs h2load for `durationS` seconds; rejects when it fails. */
export function runH2load(opts: H2loadOptions): Promise<H2loadResult> {
  rmSync(opts.logFile, { force: true })
  const args = ['-c', opts.cpus, 'h2load', '-t', '1', '-c', String(opts.connections), '-m', String(opts.streamsPerConnection),
    '-D', String(opts.durationS), `--log-file=${opts.logFile}`, opts.url]
  const env = { ...process.env, LD_PRELOAD: opts.preload, WRK_CLIENT_CERT: opts.cert, WRK_CLIENT_KEY: opts.key, WRK_TLS_RESUME: '0' }
  return new Promise((resolve, reject) => {
    const child = spawn('taskset', args, { env, stdio: ['ignore', 'pipe', 'pipe'] })
    let output = ''
    child.stdout.on('data', (d: Buffer) => (output += d.toString()))
    child.stderr.on('data', (d: Buffer) => (output += d.toString()))
    const timer = setTimeout(() => child.kill('SIGKILL'), (opts.durationS + 30) * 1000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`h2load exited with ${code}:\n${output}`))
      if (!/Application protocol: h2/.test(output)) return reject(new Error(`h2load did not negotiate h2:\n${output}`))
      resolve(parseH2loadLog(readFileSync(opts.logFile, 'utf8'), opts.durationS))
    })
  })
}
