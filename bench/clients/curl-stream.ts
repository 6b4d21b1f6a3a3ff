/**
 * The 100 MB streaming scenario's client: curl, with the client certificate,
 * downloading to /dev/null or uploading a file (PUT). curl is C and moves
 * hundreds of MB/s on loopback, so the proxy's streaming is what is timed.
 * An upload is checked end to end: the sink answers with the byte count it
 * received, which must be the file's size.
 */
import { execFile } from 'node:child_process'

export interface StreamOptions {
  readonly url: string
  readonly direction: 'up' | 'down'
  /** The file to upload (up). */
  readonly file: string
  readonly bytes: number
  readonly cert: string
  readonly key: string
  readonly ca: string
  readonly cpus: string
}

/** Transfers once; resolves with bytes per second, rejects when fewer bytes arrived. */
export function runStream(opts: StreamOptions): Promise<number> {
  const args = ['-c', opts.cpus, 'curl', '-sS', '--http1.1', '--max-time', '120', '--cert', opts.cert, '--key', opts.key, '--cacert', opts.ca,
    '-w', '\\nBENCH_CURL %{http_code} %{size_download} %{size_upload} %{time_total}\\n']
  if (opts.direction === 'up') args.push('-T', opts.file, '-H', 'Expect:')
  else args.push('-o', '/dev/null')
  args.push(opts.url)
  return new Promise((resolve, reject) => {
    execFile('taskset', args, { maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      if (err) return reject(new Error(`curl failed: ${stderr || err.message}`))
      const m = /BENCH_CURL (\d+) (\d+) (\d+) ([\d.]+)/.exec(stdout)
      if (!m || m[1] !== '200') return reject(new Error(`curl: ${opts.direction}: answered ${m?.[1] ?? 'nothing'}, expected 200`))
      const moved = opts.direction === 'up' ? Number(m[3]) : Number(m[2])
      const received = opts.direction === 'up' ? Number(stdout.split('\n')[0]) : moved
      if (moved !== opts.bytes || received !== opts.bytes) return reject(new Error(`curl: ${opts.direction}: moved ${moved}, upstream saw ${received}, expected ${opts.bytes}`))
      resolve(opts.bytes / Number(m[4]))
    })
  })
}
