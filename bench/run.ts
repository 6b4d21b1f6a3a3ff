/**
 * `npm run bench`: Portcullis against nginx, HAProxy and a naive Node proxy,
 * on loopback, in one run (see docs/benchmarks.md for what each scenario
 * measures and how to read the table).
 *
 * A run: build Portcullis (the bench measures dist/, what operators run) and
 * the client-certificate shim; make the certificates; then, `--runs` times,
 * start every proxy with a generated config, measure each scenario on each
 * proxy (the proxy order rotates per run so drift is shared), and stop them.
 * The table gives each figure's median and min–max over runs, and the
 * Portcullis ratios; the result is saved under bench/results/, and `--check`
 * compares its ratios with the previous result of the same mode.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs'
import { availableParallelism, loadavg, tmpdir } from 'node:os'
import { join } from 'node:path'
import { buildPreload, buildScript } from './build-tools.js'
import { FigureSet, type ResultFile } from './figures.js'
import { parseBenchFlags, type BenchFlags, type ScenarioName } from './flags.js'
import { machineFacts } from './machine.js'
import { makeBenchPki } from './pki.js'
import { freePorts, interruptedBy } from './processes.js'
import { findRegressions } from './regression-check.js'
import { latestBaseline, resultFileName } from './result-files.js'
import type { Durations, ScenarioContext } from './scenarios/context.js'
import { handshakes } from './scenarios/handshakes.js'
import { idleConnections } from './scenarios/idle-connections.js'
import { keepAliveH1, keepAliveH2 } from './scenarios/keepalive.js'
import { memoryIdle } from './scenarios/memory-idle.js'
import { openLoop } from './scenarios/open-loop.js'
import { pipeline } from './scenarios/pipeline.js'
import { streaming } from './scenarios/streaming.js'
import { fdHardLimit, startStack, type CpuPlan, type Stack } from './stack.js'
import { renderTable } from './table.js'
import { idleConnectionCount, proxyNames, type ProxyName, type Topology } from './topology.js'

const repo = join(import.meta.dirname, '..')
const resultsDir = join(import.meta.dirname, 'results')

const scenarios: Record<ScenarioName, (ctx: ScenarioContext) => Promise<void>> = {
  'memory-idle': memoryIdle,
  'keepalive-h1': keepAliveH1,
  'keepalive-h2': keepAliveH2,
  'open-loop': openLoop,
  handshakes,
  pipeline,
  streaming,
  'idle-connections': idleConnections,
}

const quickDurations: Durations = { warmUpS: 1, keepAliveS: 2, handshakeS: 1, openLoopS: 3, latencyS: 1 }
const fullDurations: Durations = { warmUpS: 3, keepAliveS: 10, handshakeS: 5, openLoopS: 10, latencyS: 5 }
/** Past this the run is abandoned (children are stopped by the exit handler). */
const deadlineMs = { quick: 5 * 60_000, full: 90 * 60_000 }

const log = (message: string) => process.stderr.write(`${message}\n`)

function requireTools(): void {
  const missing = ['nginx', 'haproxy', 'wrk', 'h2load', 'gcc', 'curl', 'taskset', 'openssl'].filter((tool) => {
    try {
      execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
      return false
    } catch {
      return true
    }
  })
  if (missing.length > 0) throw new Error(`missing ${missing.join(', ')}: run scripts/setup-bench.sh (as root) first`)
}

/**
 * Runs `npm run build`. tsc emits JavaScript even when it reports type
 * errors; the bench then measures what was emitted, says so, and records it.
 */
function buildPortcullis(): boolean {
  try {
    execFileSync('npm', ['run', 'build', '--silent'], { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] })
    return true
  } catch (err) {
    const output = `${(err as { stdout?: Buffer }).stdout ?? ''}`.trim()
    if (!existsSync(join(repo, 'dist', 'cli', 'index.js'))) throw new Error(`npm run build failed:\n${output}`)
    log(`bench: npm run build reported errors; measuring the JavaScript it emitted:\n${output.split('\n').slice(0, 5).join('\n')}`)
    return false
  }
}

function cpuPlan(): CpuPlan {
  const cores = availableParallelism()
  if (cores < 2) return { clientCpus: '0', proxyCpus: '0', allCpus: '0', workers: 1 }
  return { clientCpus: '0', proxyCpus: '1', allCpus: `0-${cores - 1}`, workers: cores }
}

async function topology(dir: string, pki: Topology['pki'], idleConnections: number): Promise<Topology> {
  const p = await freePorts(13)
  const pair = (i: number) => ({ ec: p[i]!, rsa: p[i + 1]! })
  return {
    dir, pki, upstreamPort: p[0]!, sinkPort: p[1]!, idleConnections,
    ports: { portcullis: pair(2), 'portcullis-cluster': pair(4), nginx: pair(6), haproxy: pair(8), naive: { ...pair(10), h2: p[12]! } },
  }
}

async function main(flags: BenchFlags): Promise<number> {
  const mode = flags.isQuick ? 'quick' : 'full'
  setTimeout(() => {
    log(`bench: the ${mode} run passed its ${deadlineMs[mode] / 60_000} min limit; stopping`)
    process.exit(2)
  }, deadlineMs[mode]).unref()
  const startedAt = new Date()
  requireTools()
  log('bench: npm run build')
  const isBuildClean = buildPortcullis()
  const preload = buildPreload()
  for (const script of ['naive-proxy.ts', 'sink-upstream.ts']) buildScript(script)
  const cpus = cpuPlan()
  const fdLimit = fdHardLimit()
  const machine = machineFacts(repo, fdLimit)
  if (Number(machine.loadAverage1m) > 0.5) log(`bench: load average ${machine.loadAverage1m} at start: other work shares these cores; expect noise`)

  const baseDir = mkdtempSync(join(tmpdir(), 'portcullis-bench-'))
  const pki = { ec: makeBenchPki(baseDir, 'ec'), rsa: makeBenchPki(baseDir, 'rsa') }
  const figures = new FigureSet()
  const notes = new Set<string>()
  const durations = flags.isQuick ? quickDurations : fullDurations
  const only = new Set<ProxyName>(proxyNames)
  let stack: Stack | undefined
  let topo: Topology | undefined
  for (let run = 0; run < flags.runs; run++) {
    // Full runs restart every proxy per run, so each run's memory figures start clean; quick runs keep them.
    const isFreshStart = !stack || !flags.isQuick
    if (isFreshStart) {
      await stack?.stop()
      const dir = join(baseDir, `run-${run + 1}`)
      mkdirSync(dir)
      topo = await topology(dir, pki, idleConnectionCount(fdLimit))
      log(`bench: run ${run + 1}/${flags.runs}: starting proxies (files in ${dir})`)
      stack = await startStack(topo, cpus, { mainJs: join(repo, 'dist', 'cli', 'index.js'), only })
      for (const h of stack.proxies.values()) {
        if (!h.isRunning) {
          notes.add(`${h.name}: not measured: ${h.note}`)
          only.delete(h.name)
        }
      }
    } else log(`bench: run ${run + 1}/${flags.runs}`)
    const order = proxyNames.map((_, i) => proxyNames[(i + run) % proxyNames.length]!)
    const ctx: ScenarioContext = { topo: topo!, stack: stack!, cpus, preload, isQuick: flags.isQuick, durations, figures, notes, order, keepAliveRps: new Map(), isFreshStart, log }
    for (const name of flags.scenarios) {
      log(`bench: ${name}`)
      try {
        await scenarios[name](ctx)
      } catch (err) {
        // One broken scenario should not cost the others' figures; the table shows the gap.
        if (interruptedBy()) throw err
        notes.add(`${name}: failed in run ${run + 1}: ${(err as Error).message.split('\n')[0]}`)
        log(`bench: ${name} failed: ${(err as Error).message}`)
      }
    }
  }
  await stack?.stop()

  const result: ResultFile = {
    version: 1,
    startedAt: startedAt.toISOString(),
    mode,
    note: flags.note,
    machine: { ...machine, loadAverage1mAtEnd: Math.round(loadavg()[0]! * 100) / 100 },
    settings: {
      buildClean: isBuildClean,
      runs: flags.runs,
      scenarios: flags.scenarios.join(','),
      proxyCpus: cpus.proxyCpus,
      clientCpus: cpus.clientCpus,
      clusterCpus: cpus.allCpus,
      clusterWorkers: cpus.workers,
      idleConnections: flags.isQuick ? 1000 : topo!.idleConnections,
      ...Object.fromEntries(Object.entries(durations).map(([k, v]) => [`duration.${k}`, v])),
    },
    notes: [...notes],
    figures: figures.figures(),
  }
  process.stdout.write(`\n${renderTable(result.figures)}\n\n`)
  process.stdout.write(`Each cell: median (min–max) over ${flags.runs} run(s). Ratios: Portcullis median ÷ the other's median.\n`)
  process.stdout.write(`Single-process proxies on CPU ${cpus.proxyCpus}; load client and upstream on CPU ${cpus.clientCpus}; cluster on CPUs ${cpus.allCpus} (shared with the client).\n`)
  for (const note of notes) process.stdout.write(`- ${note}\n`)

  const baseline = latestBaseline(resultsDir, mode)
  mkdirSync(resultsDir, { recursive: true })
  // The commit read at the start: others may commit while a long run measures.
  const file = join(resultsDir, resultFileName(startedAt, String(machine.gitSha).slice(0, 7)))
  writeFileSync(file, `${JSON.stringify(result, null, 2)}\n`)
  process.stdout.write(`\nresult: ${file}\n`)

  if (!flags.isCheck) return 0
  if (!baseline) {
    process.stdout.write(`check: no earlier ${mode} result in bench/results/ to compare with; this one is the baseline now\n`)
    return 0
  }
  const regressions = findRegressions(baseline.result.figures, result.figures)
  if (regressions.length === 0) {
    process.stdout.write(`check: no Portcullis ratio is more than 15% worse than in ${baseline.file}\n`)
    return 0
  }
  process.stdout.write(`check: FAILED against ${baseline.file}:\n`)
  for (const r of regressions) {
    process.stdout.write(`  ${r.label} ÷ ${r.base}: ${r.baseline.toFixed(3)} → ${r.current.toFixed(3)} (${Math.round(r.loss * 100)}% worse)\n`)
  }
  return 1
}

let flags: BenchFlags
try {
  flags = parseBenchFlags(process.argv.slice(2))
} catch (err) {
  log((err as Error).message)
  process.exit(2)
}
main(flags).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // After Ctrl-C the cleanup handler is stopping everything and exits 130.
    if (!interruptedBy()) {
      log(`bench: ${(err as Error).stack ?? String(err)}`)
      process.exit(1)
    }
  },
)
