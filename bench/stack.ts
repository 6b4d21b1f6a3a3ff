/**
 * Starts the upstreams and every compared proxy for one bench run, each on
 * its own loopback ports with a generated config, pinned the same way:
 *
 * - single-process proxies (Portcullis, nginx with 1 worker, HAProxy with 1
 *   thread, the naive Node floor) on `proxyCpus` — one core;
 * - Portcullis cluster mode (one worker per core) on every core;
 * - the upstream, the sink and the load clients on `clientCpus`.
 *
 * On a 2-core machine that is core 1 for a proxy and core 0 for the load
 * client and upstream: a single-process proxy never competes with its load.
 * Cluster mode cannot have a core of its own for the client; its column says
 * what 2 workers do when the client shares their cores.
 */
import { execFileSync } from 'node:child_process'
import { chmodSync, closeSync, existsSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { buildScript } from './build-tools.js'
import { renderHaproxyConfig } from './configs/haproxy-config.js'
import { renderNginxConfig } from './configs/nginx-config.js'
import { renderPortcullisConfig } from './configs/portcullis-config.js'
import { renderUpstreamConfig } from './configs/upstream-config.js'
import type { NaiveProxyConfig } from './naive-proxy.js'
import { startProcess, waitForPort, type Spawned } from './processes.js'
import { paths, streamBytes, type ProxyName, type Topology } from './topology.js'

/** A running proxy, or why it is not running. */
export type ProxyHandle =
  | { readonly name: ProxyName; readonly isRunning: true; readonly proc: Spawned }
  | { readonly name: ProxyName; readonly isRunning: false; readonly note: string }

export interface Stack {
  readonly proxies: ReadonlyMap<ProxyName, ProxyHandle>
  stop(): Promise<void>
}

export interface CpuPlan {
  readonly clientCpus: string
  readonly proxyCpus: string
  readonly allCpus: string
  readonly workers: number
}

/** The descriptor hard limit the proxies inherit (they cannot raise it). */
export function fdHardLimit(): number {
  return Number(execFileSync('sh', ['-c', 'ulimit -Hn'], { encoding: 'utf8' }).trim()) || 1024
}

/**
 * The 100 MB file the upstream serves and curl uploads. Sparse is fine: the
 * proxies see only its bytes over HTTP. nginx's worker runs as an
 * unprivileged user, so the file is world-readable and the two directories
 * above it (the run's and the bench's temp directory) traversable but not
 * listable; keys stay 0600, read by nginx's master as root.
 */
function makeDownloadFile(dir: string): string {
  const file = join(dir, 'download.bin')
  if (!existsSync(file)) {
    const fd = openSync(file, 'w', 0o644)
    ftruncateSync(fd, streamBytes)
    closeSync(fd)
  }
  chmodSync(dir, 0o711) // the run directory
  chmodSync(dirname(dir), 0o711) // the bench's temp directory
  return file
}

async function startPortcullis(topo: Topology, name: 'portcullis' | 'portcullis-cluster', cpus: CpuPlan, mainJs: string): Promise<ProxyHandle> {
  const dir = join(topo.dir, name)
  mkdirSync(dir, { recursive: true })
  const config = join(dir, 'portcullis.yaml')
  writeFileSync(config, renderPortcullisConfig(topo, topo.ports[name], name))
  const args = [mainJs, 'start', '-c', config, '--data-dir', dir, '--pid-file', join(dir, 'portcullis.pid'), '--log-level', 'warn']
  if (name === 'portcullis-cluster') args.push('--workers', String(cpus.workers))
  const proc = startProcess(name, process.execPath, args, join(topo.dir, `${name}.log`), { cpus: name === 'portcullis' ? cpus.proxyCpus : cpus.allCpus })
  try {
    await waitForPort(proc, topo.ports[name].rsa)
  } catch (err) {
    await proc.stop()
    const log = readFileSync(proc.logFile, 'utf8')
    if (name === 'portcullis-cluster' && /workers/.test(log) && /Unknown option|unknown option/i.test(log)) {
      return { name, isRunning: false, note: '`portcullis start --workers` is not available in this build' }
    }
    throw err
  }
  return { name, isRunning: true, proc }
}

/** Starts everything; on failure stops what was started and rethrows. */
export async function startStack(topo: Topology, cpus: CpuPlan, opts: { mainJs: string; only: ReadonlySet<ProxyName> }): Promise<Stack> {
  const started: Spawned[] = []
  const proxies = new Map<ProxyName, ProxyHandle>()
  const stop = async () => {
    await Promise.all(started.map((p) => p.stop()))
  }
  try {
    const upstreamConf = join(topo.dir, 'upstream.conf')
    writeFileSync(upstreamConf, renderUpstreamConfig(topo, makeDownloadFile(topo.dir)))
    const upstream = startProcess('upstream', 'nginx', ['-c', upstreamConf, '-g', 'daemon off;'], join(topo.dir, 'upstream.log'), { cpus: cpus.clientCpus })
    started.push(upstream)
    const sink = startProcess('sink', process.execPath, [buildScript('sink-upstream.ts'), String(topo.sinkPort)], join(topo.dir, 'sink.log'), { cpus: cpus.clientCpus })
    started.push(sink)
    await waitForPort(upstream, topo.upstreamPort)
    await waitForPort(sink, topo.sinkPort)

    const add = async (handle: ProxyHandle) => {
      if (handle.isRunning) started.push(handle.proc)
      proxies.set(handle.name, handle)
    }
    for (const name of ['portcullis', 'portcullis-cluster'] as const) {
      if (opts.only.has(name)) await add(await startPortcullis(topo, name, cpus, opts.mainJs))
    }
    if (opts.only.has('nginx')) {
      const conf = join(topo.dir, 'nginx.conf')
      writeFileSync(conf, renderNginxConfig(topo, fdHardLimit()))
      const proc = startProcess('nginx', 'nginx', ['-c', conf, '-g', 'daemon off;'], join(topo.dir, 'nginx.log'), { cpus: cpus.proxyCpus })
      await add({ name: 'nginx', isRunning: true, proc })
      await waitForPort(proc, topo.ports.nginx.rsa)
    }
    if (opts.only.has('haproxy')) {
      const conf = join(topo.dir, 'haproxy.cfg')
      writeFileSync(conf, renderHaproxyConfig(topo, fdHardLimit()))
      const proc = startProcess('haproxy', 'haproxy', ['-db', '-f', conf], join(topo.dir, 'haproxy.log'), { cpus: cpus.proxyCpus })
      await add({ name: 'haproxy', isRunning: true, proc })
      await waitForPort(proc, topo.ports.haproxy.rsa)
    }
    if (opts.only.has('naive')) {
      const ports = topo.ports.naive
      const listener = (port: number, keyType: 'ec' | 'rsa', http2: boolean) => ({
        port, cert: topo.pki[keyType].serverCert, key: topo.pki[keyType].serverKey, ca: topo.pki[keyType].caCert, http2,
      })
      const config: NaiveProxyConfig = {
        listeners: [listener(ports.ec, 'ec', false), listener(ports.rsa, 'rsa', false), ...(ports.h2 ? [listener(ports.h2, 'ec', true)] : [])],
        upstreamUrl: `http://127.0.0.1:${topo.upstreamPort}`,
        sinkUrl: `http://127.0.0.1:${topo.sinkPort}`,
        uploadPath: paths.upload,
      }
      const conf = join(topo.dir, 'naive.json')
      writeFileSync(conf, JSON.stringify(config))
      const proc = startProcess('naive', process.execPath, [buildScript('naive-proxy.ts'), conf], join(topo.dir, 'naive.log'), { cpus: cpus.proxyCpus })
      await add({ name: 'naive', isRunning: true, proc })
      await waitForPort(proc, ports.rsa)
      if (ports.h2) await waitForPort(proc, ports.h2)
    }
  } catch (err) {
    await stop()
    throw err
  }
  return { proxies, stop }
}
