/**
 * The CLI as a user runs it, in a child process: `validate` with issues at
 * file:line:col, `version`, and `start` in development mode — whose printed
 * curl commands are run with the real curl — then SIGHUP and SIGTERM.
 */
import assert from 'node:assert/strict'
import { execFile, spawn, type ChildProcess } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, describe, test } from 'node:test'
import { promisify } from 'node:util'

const run = promisify(execFile)
const root = join(import.meta.dirname, '..', '..')
const cli = ['--import', 'tsx', join(root, 'src', 'cli', 'index.ts')]

async function portcullis(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const { stdout, stderr } = await run(process.execPath, [...cli, ...args], { cwd: root })
    return { code: 0, stdout, stderr }
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string }
    return { code: e.code, stdout: e.stdout, stderr: e.stderr }
  }
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** Runs a shell command line printed by the gateway (a curl command). */
async function shell(line: string): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run('/bin/sh', ['-c', line])
    return { code: 0, stdout }
  } catch (err) {
    const e = err as { code: number; stdout: string }
    return { code: e.code, stdout: e.stdout }
  }
}

let child: ChildProcess | undefined
after(() => {
  child?.kill('SIGKILL')
})

describe('portcullis CLI', { timeout: 60_000 }, () => {
  test('validate reports issues at file:line:col and exits 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-cli-'))
    const file = join(dir, 'bad.yaml')
    writeFileSync(file, 'version: 1\nlisteners:\n  - name: main\n    port: 8443\n    tls:\n      certificates: []\n      clientAuth: { mode: requird }\nupstreams: {}\n')
    const { code, stderr } = await portcullis(['validate', file])
    assert.equal(code, 1)
    assert.match(stderr, /bad\.yaml:7:\d+ listeners\.0\.tls\.clientAuth\.mode: /)
    assert.match(stderr, /bad\.yaml:6:\d+ listeners\.0\.tls\.certificates: /)
  })

  test('version prints the package version', async () => {
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string }
    const { code, stdout } = await portcullis(['version'])
    assert.equal(code, 0)
    assert.match(stdout, new RegExp(`^portcullis ${pkg.version.replace(/\./g, '\\.')} `))
  })

  test('unknown command prints usage and exits 2', async () => {
    const { code, stderr } = await portcullis(['launch'])
    assert.equal(code, 2)
    assert.match(stderr, /usage: portcullis/)
  })

  test('start in development mode prints curl commands that work, reloads on SIGHUP, drains on SIGTERM', async () => {
    const dataDir = mkdtempSync(join(tmpdir(), 'portcullis-dev-'))
    const port = await freePort()
    child = spawn(process.execPath, [...cli, 'start', '--data-dir', dataDir, '--port', String(port)], { cwd: root })
    let stdout = ''
    let stderr = ''
    child.stdout!.on('data', (c: Buffer) => (stdout += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()))
    const deadline = Date.now() + 30_000
    while (!/"msg":"listening"/.test(stderr) && Date.now() < deadline && child.exitCode === null) {
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.match(stderr, /"msg":"listening"/, `gateway started; stderr: ${stderr}`)

    const commands = stdout.split('\n').map((l) => l.trim()).filter((l) => l.startsWith('curl '))
    assert.equal(commands.length, 2, `two curl commands printed:\n${stdout}`)
    const [withCert, withoutCert] = commands as [string, string]
    assert.match(withCert, /--cert /)
    assert.doesNotMatch(withoutCert, /--cert /)

    const ok = await shell(`${withCert} -sS -w '\\n%{http_code}'`)
    assert.equal(ok.code, 0)
    assert.match(ok.stdout, /\n200$/, ok.stdout)

    const refused = await shell(`${withoutCert} -sS -w '\\n%{http_code}'`)
    assert.match(refused.stdout, /"reason":"client_cert_required"/)
    assert.match(refused.stdout, /\n401$/)

    // An invalid edit is refused on SIGHUP and the running config keeps serving.
    const configPath = join(dataDir, 'portcullis.yaml')
    const good = readFileSync(configPath, 'utf8')
    writeFileSync(configPath, `${good}\nbogus: true\n`)
    child.kill('SIGHUP')
    const refusedDeadline = Date.now() + 10_000
    while (!/reload refused/.test(stderr) && Date.now() < refusedDeadline) await new Promise((r) => setTimeout(r, 100))
    assert.match(stderr, /reload refused/)
    assert.match((await shell(`${withCert} -sS -o /dev/null -w '%{http_code}'`)).stdout, /^200$/)

    writeFileSync(configPath, good)
    const reload = await portcullis(['reload', '--pid-file', join(dataDir, 'portcullis.pid')])
    assert.equal(reload.code, 0, reload.stderr)
    assert.match(reload.stdout, /reload requested/)
    const appliedDeadline = Date.now() + 10_000
    while (!/reload applied/.test(stderr) && Date.now() < appliedDeadline) await new Promise((r) => setTimeout(r, 100))
    assert.match(stderr, /reload applied/)

    const exited = new Promise<number | null>((resolve) => child!.once('exit', (code) => resolve(code)))
    child.kill('SIGTERM')
    assert.equal(await exited, 0)
  })
})
