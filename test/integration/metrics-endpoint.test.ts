/**
 * The metrics endpoint as an operator runs it: `portcullis start -c` with a
 * `metrics:` section, scraped over real HTTP; a reload that changes it keeps
 * the running endpoint and says so.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { appendFileSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, test } from 'node:test'
import { prepareDevEnvironment } from '../../src/dev/dev-environment.js'
import { systemClock } from '../../src/shared/clock.js'

const root = join(import.meta.dirname, '..', '..')
const cli = ['--import', 'tsx', join(root, 'src', 'cli', 'index.ts')]

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

let child: ChildProcess | undefined
after(() => child?.kill('SIGKILL'))

async function waitFor(read: () => string, pattern: RegExp, ms: number): Promise<void> {
  const deadline = Date.now() + ms
  while (!pattern.test(read()) && Date.now() < deadline && child?.exitCode === null) await new Promise((r) => setTimeout(r, 100))
  assert.match(read(), pattern)
}

test('start serves Prometheus metrics on the configured port; a reload that changes it warns and keeps it', { timeout: 60_000 }, async () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-metrics-'))
  const dev = await prepareDevEnvironment({ dataDir, port: await freePort(), clock: systemClock })
  try {
    const metricsPort = await freePort()
    appendFileSync(dev.configPath, `\nmetrics:\n  port: ${metricsPort}\n`)
    child = spawn(process.execPath, [...cli, 'start', '-c', dev.configPath, '--pid-file', join(dataDir, 'pid')], { cwd: root })
    let stderr = ''
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    await waitFor(() => stderr, /"msg":"serving metrics"/, 30_000)

    const scrape = await fetch(`http://127.0.0.1:${metricsPort}/metrics`)
    assert.equal(scrape.status, 200)
    const text = await scrape.text()
    assert.match(text, /^process_resident_memory_bytes \d+/m)
    assert.match(text, /^nodejs_eventloop_lag_seconds /m)

    writeFileSync(dev.configPath, readFileSync(dev.configPath, 'utf8').replace(`port: ${metricsPort}\n`, `port: ${metricsPort}\n  path: /other\n`))
    child.kill('SIGHUP')
    await waitFor(() => stderr, /the metrics section changed; it takes effect at the next restart/, 10_000)
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).status, 200, 'the running endpoint keeps its path')

    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
    await assert.rejects(fetch(`http://127.0.0.1:${metricsPort}/metrics`), 'the endpoint is closed on exit')
  } finally {
    await dev.upstream.close()
  }
})
