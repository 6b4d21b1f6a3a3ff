/**
 * The composition root: reads the environment, builds the clock, loggers and
 * source context, picks every implementation, and wires signals. No other
 * module reads process.env or creates a logger.
 */
import cluster from 'node:cluster'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { pino } from 'pino'
import { formatIssue } from './config/issues.js'
import { loadConfig } from './config/load.js'
import { createMetricsRegistry } from './observability/metrics.js'
import { startExpiryMonitor } from './observability/expiry-monitor.js'
import { startMetricsServer, type MetricsServer } from './observability/metrics-server.js'
import { mergeProcessMetrics } from './observability/process-metrics.js'
import type { PkiService, PkiServiceDeps } from './control/pki-service.js'
import type { PkiConfig } from './config/schema/index.js'
import { AccessLog, accessLogOptions } from './proxy/access-log.js'
import { CertificateSightings } from './proxy/certificate-sightings.js'
import { RevocationSet } from './proxy/revocation-set.js'
import { OcspStapler } from './proxy/tls/ocsp-stapling.js'
import { Gateway } from './runtime.js'
import { systemClock } from './shared/clock.js'
import { createLogger, type Logger } from './shared/log.js'
import type { SourceContext } from './config/secrets.js'
import type { Clock } from './shared/clock.js'
import type { TicketKeySourceFactory } from './proxy/tls/ticket-keys.js'
import { ClusterPrimary } from './cluster/primary.js'
import { ClusterWorker, type WorkerChannel } from './cluster/worker.js'
import { defaultRestartPolicy } from './cluster/restart-policy.js'
import { PrimarySightings } from './cluster/primary-sightings.js'

export interface StartOptions {
  /** Config file; when absent, the development environment is generated in dataDir. */
  readonly configPath: string | undefined
  readonly dataDir: string
  /** Port of the dev listener (dev mode only). */
  readonly devPort: number
  readonly logLevel: string
  /** Write a pid file here so `portcullis reload` can signal us. */
  readonly pidFile: string
  /** Data-plane processes. Above 1, cluster mode: this process becomes the primary (see startClusterPrimary). Default 1. */
  readonly workers?: number
}

/** Prints to stdout for the operator (not a log line). */
function say(text: string): void {
  process.stdout.write(`${text}\n`)
}

/** Starts the gateway and wires SIGHUP (reload) and SIGTERM/SIGINT (drain and exit). */
export async function start(opts: StartOptions): Promise<void> {
  // A cluster worker is this same command, forked by the primary, which tells it what to serve.
  if (cluster.isWorker) return startClusterWorker(opts)
  const isCluster = (opts.workers ?? 1) > 1
  const log = createLogger({ level: opts.logLevel, ...(isCluster ? { destination: sharedStdio(2) } : {}) })
  const clock = systemClock
  let configPath = opts.configPath && resolve(opts.configPath)
  let stopDev: (() => Promise<void>) | undefined
  if (!configPath) {
    const { prepareDevEnvironment } = await import('./dev/dev-environment.js')
    const dev = await prepareDevEnvironment({ dataDir: resolve(opts.dataDir), port: opts.devPort, clock })
    configPath = dev.configPath
    stopDev = () => dev.upstream.close()
    say(`Portcullis development mode: a generated CA and certificates in ${resolve(opts.dataDir)}`)
    say(`Example upstream: ${dev.upstream.url}`)
    say(`Config (copy it as a starting point): ${configPath}\n`)
    say(`With the client certificate (answered by the example upstream):\n  ${dev.curl.withCert}\n`)
    say(`Without one (refused with a problem+json 401):\n  ${dev.curl.withoutCert}\n`)
  }

  const text = readFileSync(configPath, 'utf8')
  const env = process.env
  const source = { baseDir: dirname(configPath), env }
  if (isCluster) return startClusterPrimary(opts, { log, clock, configPath, text, source, stopDev })
  const { accessDest, revocation, metrics, gateway, sightings } = createDataPlane({ source, clock, log })
  if (!(await prepareManagedCertificates(text, configPath, { source, clock, log }))) {
    await stopDev?.()
    log.flush?.()
    process.exitCode = 1
    return
  }
  const result = await gateway.apply(text, configPath)
  if (!result.ok) {
    for (const issue of result.issues) process.stderr.write(`${formatIssue(issue)}\n`)
    await stopDev?.()
    process.exitCode = 1
    return
  }
  for (const l of gateway.current().config.listeners) {
    log.info({ listener: l.name, host: l.host, port: gateway.port(l.name) }, 'listening')
  }
  // The built-in CA's service starts with the first config and keeps it: a
  // changed `pki:` section takes effect at the next restart (see SIGHUP).
  const pkiConfig = gateway.current().config.pki
  let pki: PkiService | undefined
  if (pkiConfig) {
    try {
      pki = await startCaService(pkiConfig, { source, clock, log, revocation, metrics, sightings }, async () => {
        const r = await gateway.reload()
        return r.ok ? { ok: true, applied: { generation: r.generation } } : { ok: false, issues: r.issues.map(formatIssue) }
      })
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot start the certificate authority service')
      await gateway.stop()
      await stopDev?.()
      log.flush?.()
      process.exitCode = 1
      return
    }
  }
  // Like pki, the metrics endpoint keeps the first config's address until restart.
  const metricsConfig = gateway.current().config.metrics
  let metricsServer: MetricsServer | undefined
  if (metricsConfig) {
    try {
      metricsServer = await startMetricsServer(metrics, metricsConfig)
      log.info({ host: metricsConfig.host, port: metricsServer.port, path: metricsConfig.path }, 'serving metrics')
    } catch (err) {
      log.error({ err: (err as NodeJS.ErrnoException).code ?? (err as Error).message, host: metricsConfig.host, port: metricsConfig.port }, 'cannot start the metrics endpoint')
      await pki?.close()
      await gateway.stop()
      await stopDev?.()
      log.flush?.()
      process.exitCode = 1
      return
    }
  }
  // One expiry monitor per process; it follows reloads by reading gateway.current().
  const expiry = startExpiryMonitor({ current: () => gateway.current(), source, clock, log, metrics, pki: pki?.expiryView })
  mkdirSync(dirname(opts.pidFile), { recursive: true })
  writeFileSync(opts.pidFile, `${process.pid}\n`)

  process.on('SIGHUP', () => {
    const next = readConfigForReload(configPath, log)
    if (next === undefined) return
    void gateway.apply(next, configPath).then((r) => {
      if (r.ok) {
        log.info({ generation: r.generation }, 'reload applied')
        if (JSON.stringify(gateway.current().config.pki) !== JSON.stringify(pkiConfig)) {
          log.warn('reload: the pki section changed; it takes effect at the next restart')
        }
        if (JSON.stringify(gateway.current().config.metrics) !== JSON.stringify(metricsConfig)) {
          log.warn('reload: the metrics section changed; it takes effect at the next restart')
        }
      }
      else log.error({ issues: r.issues.map(formatIssue) }, 'reload refused; keeping the running config')
    })
  })
  let isStopping = false
  const stop = (signal: string) => {
    if (isStopping) return
    isStopping = true
    log.info({ signal }, 'draining and stopping')
    void gateway
      .stop()
      .then(() => expiry.close()) // before pki: it reads the inventory
      .then(() => pki?.close())
      .then(() => metricsServer?.close())
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'stop did not complete cleanly'))
      .then(() => stopDev?.())
      .finally(() => {
        rmSync(opts.pidFile, { force: true })
        accessDest.flushSync?.()
        log.flush?.()
        process.exit(0)
      })
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
}

/** The config text for a reload (SIGHUP); undefined, logged, when it cannot be read — the running config stays. */
function readConfigForReload(configPath: string, log: Logger): string | undefined {
  try {
    return readFileSync(configPath, 'utf8')
  } catch (err) {
    log.error({ file: configPath, code: (err as NodeJS.ErrnoException).code }, 'reload: cannot read config; keeping the running one')
    return undefined
  }
}

/**
 * Managed certificates first, so listeners may point at files that do not
 * exist yet (a fresh install): the config is loaded without reading the files
 * it names, which would refuse exactly those. A config that does not load
 * skips this (applying it reports its issues). False, logged, when they
 * cannot be prepared.
 */
async function prepareManagedCertificates(text: string, configPath: string, deps: { readonly source: SourceContext; readonly clock: Clock; readonly log: Logger }): Promise<boolean> {
  const preloaded = loadConfig(text, configPath, { source: deps.source, readFiles: false })
  const pki = preloaded.ok ? preloaded.config.pki : undefined
  if (!pki || pki.managedCertificates.length === 0) return true
  try {
    const { ensureManagedCertificatesAtStart } = await import('./control/pki-service.js')
    await ensureManagedCertificatesAtStart(pki, deps)
    return true
  } catch (err) {
    deps.log.error({ err: (err as Error).message }, 'cannot prepare the managed certificates')
    return false
  }
}

/** What a reload of every data-plane process reports: fields to log when applied, or the issues (file:line:col lines). */
type ReloadOutcome = { readonly ok: true; readonly applied: Record<string, unknown> } | { readonly ok: false; readonly issues: readonly string[] }

/**
 * Starts the built-in CA's service, imported only with a `pki:` section (the
 * CA's X.509 libraries are a large part of idle memory). Renewed managed
 * certificates reach the listeners by `reload`; a refused reload keeps the
 * previous certificates serving and is retried at the service's next check.
 * Throws like startPkiService.
 */
async function startCaService(pkiConfig: PkiConfig, deps: Omit<PkiServiceDeps, 'onRenewed'>, reload: () => Promise<ReloadOutcome>): Promise<PkiService> {
  const { startPkiService } = await import('./control/pki-service.js')
  return startPkiService(pkiConfig, {
    ...deps,
    onRenewed: async (renewed) => {
      const r = await reload()
      if (r.ok) deps.log.info({ renewed, ...r.applied }, 'managed certificates renewed; reload applied')
      else deps.log.error({ renewed, issues: r.issues }, 'managed certificates renewed but the reload was refused; the previous certificates keep serving')
      return r.ok // false: the service retries the reload at its next check
    },
  })
}

/** The data plane of one process (the single gateway, or one cluster worker's): access log, revoked set, metrics, Gateway. */
function createDataPlane(deps: {
  readonly source: SourceContext
  readonly clock: Clock
  readonly log: Logger
  /** In a cluster worker: its id (on every access-log line) and the primary's ticket keys. */
  readonly worker?: { readonly id: number; readonly ticketKeys: TicketKeySourceFactory }
}) {
  const { source, clock, log, worker } = deps
  // The access log has its own destination: stdout by default, or the configured file.
  const accessDest = worker ? sharedStdio(1) : pino.destination({ fd: 1, sync: false })
  const accessLogger = pino(accessLogOptions, accessDest)
  const accessLog = new AccessLog(worker ? accessLogger.child({ worker: worker.id }) : accessLogger)
  // One revoked set for the process: the listeners enforce it, the PKI service (or the cluster primary) fills it.
  const revocation = new RevocationSet()
  const metrics = createMetricsRegistry()
  // OCSP staples of the listeners' certificates; notes of the client certificates presented (the PKI service writes them to the inventory).
  const stapler = new OcspStapler({ clock, log })
  const sightings = new CertificateSightings()
  const gateway = new Gateway({ source, clock, log, accessLog, revocation, metrics, stapler, sightings, ...(worker ? { ticketKeys: worker.ticketKeys } : {}) })
  return { accessDest, revocation, metrics, gateway, sightings }
}

/** How long a scrape waits for each worker's metrics; a slower worker is left out of that scrape. */
const WORKER_METRICS_TIMEOUT_MS = 2000

/** Largest write a pipe never interleaves with other writers' (POSIX PIPE_BUF on Linux). */
const PIPE_BUF = 4096

/**
 * stdout or stderr when the cluster's processes share it (workers inherit the
 * primary's): every write is whole log lines and at most PIPE_BUF bytes, so
 * lines from different processes never cut into each other.
 */
function sharedStdio(fd: 1 | 2) {
  return pino.destination({ fd, sync: false, maxWrite: PIPE_BUF })
}

/**
 * Cluster mode's primary (src/cluster/primary.ts): prepares the managed
 * certificates, runs the singletons (the CA service, the metrics endpoint,
 * the expiry monitor) once, forks the workers, and turns SIGHUP and SIGTERM
 * into a reload or a drain of every worker.
 */
async function startClusterPrimary(
  opts: StartOptions,
  ctx: { readonly log: Logger; readonly clock: Clock; readonly configPath: string; readonly text: string; readonly source: SourceContext; readonly stopDev: (() => Promise<void>) | undefined },
): Promise<void> {
  const { clock, configPath, text, source, stopDev } = ctx
  const log = ctx.log.child({ role: 'primary' })
  const workers = opts.workers ?? 1
  let pki: PkiService | undefined
  let metricsServer: MetricsServer | undefined
  let expiry: { close(): Promise<void> } | undefined
  let isStopping = false
  const stop = (signal: string, code: number) => {
    if (isStopping) return
    isStopping = true
    log.info({ signal }, 'draining and stopping')
    void primary
      .stop()
      .then(() => expiry?.close()) // before pki: it reads the inventory
      .then(() => pki?.close())
      .then(() => metricsServer?.close())
      .catch((err: unknown) => log.error({ err: (err as Error).message }, 'stop did not complete cleanly'))
      .then(() => stopDev?.())
      .finally(() => {
        rmSync(opts.pidFile, { force: true })
        log.flush?.()
        process.exit(code)
      })
  }
  const fail = async (cleanup?: () => Promise<unknown>) => {
    await cleanup?.().catch(() => undefined)
    await stopDev?.()
    log.flush?.()
    process.exitCode = 1
  }

  if (!(await prepareManagedCertificates(text, configPath, { source, clock, log }))) return fail()
  const checked = loadConfig(text, configPath, { source })
  if (!checked.ok) {
    for (const issue of checked.issues) process.stderr.write(`${formatIssue(issue)}\n`)
    return fail()
  }

  // Round-robin by the primary: see src/cluster/primary.ts. Node's own NODE_CLUSTER_SCHED_POLICY ("rr" | "none") still wins.
  if (!process.env.NODE_CLUSTER_SCHED_POLICY) cluster.schedulingPolicy = cluster.SCHED_RR
  // Filled by the CA service here; the primary sends every addition to the workers.
  const revocation = new RevocationSet()
  // Drained by the CA service here; the workers' sightings are merged into it.
  const sightings = new PrimarySightings()
  const metrics = createMetricsRegistry()
  const primary = new ClusterPrimary({
    workers,
    configPath,
    source,
    clock,
    log,
    revocation,
    sightings,
    restartPolicy: defaultRestartPolicy(workers),
    onGiveUp: (message) => {
      log.error(message)
      stop('workers keep dying', 1)
    },
  })
  // The CA service starts before the workers, so they bind knowing every revocation.
  const pkiConfig = checked.config.pki
  if (pkiConfig) {
    try {
      pki = await startCaService(pkiConfig, { source, clock, log, revocation, metrics, sightings }, async () => {
        const r = await primary.reload()
        return r.ok ? { ok: true, applied: { generation: r.generation, workers: r.workers } } : { ok: false, issues: r.issues }
      })
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot start the certificate authority service')
      return fail()
    }
  }
  const started = await primary.start(text)
  if (!started.ok) {
    for (const issue of started.issues) process.stderr.write(`${issue}\n`)
    return fail(async () => {
      await primary.stop()
      await pki?.close()
    })
  }
  for (const l of started.config.listeners) {
    log.info({ listener: l.name, host: l.host, port: started.ports[l.name], workers }, 'listening')
  }
  // One scrape covers every process: the primary's registry (CA service, expiry) and each worker's, labelled by process.
  const metricsConfig = started.config.metrics
  if (metricsConfig) {
    const everyProcess = {
      contentType: metrics.contentType,
      metrics: async () =>
        mergeProcessMetrics([
          { process: 'primary', metrics: await metrics.getMetricsAsJSON() },
          ...(await primary.workerMetrics(WORKER_METRICS_TIMEOUT_MS)).map((w) => ({ process: `worker-${w.worker}`, metrics: w.metrics })),
        ]),
    }
    try {
      metricsServer = await startMetricsServer(everyProcess, metricsConfig)
      log.info({ host: metricsConfig.host, port: metricsServer.port, path: metricsConfig.path }, 'serving metrics')
    } catch (err) {
      log.error({ err: (err as NodeJS.ErrnoException).code ?? (err as Error).message, host: metricsConfig.host, port: metricsConfig.port }, 'cannot start the metrics endpoint')
      return fail(async () => {
        await primary.stop()
        await pki?.close()
      })
    }
  }
  expiry = startExpiryMonitor({ current: () => primary.current(), source, clock, log, metrics, pki: pki?.expiryView })
  mkdirSync(dirname(opts.pidFile), { recursive: true })
  writeFileSync(opts.pidFile, `${process.pid}\n`)

  process.on('SIGHUP', () => {
    const next = readConfigForReload(configPath, log)
    if (next === undefined) return
    void primary.apply(next).then((r) => {
      if (!r.ok) {
        log.error({ issues: r.issues }, 'reload refused; keeping the running config')
        return
      }
      log.info({ generation: r.generation, workers: r.workers }, 'reload applied')
      const now = primary.current().config
      if (JSON.stringify(now.pki) !== JSON.stringify(pkiConfig)) log.warn('reload: the pki section changed; it takes effect at the next restart')
      if (JSON.stringify(now.metrics) !== JSON.stringify(metricsConfig)) log.warn('reload: the metrics section changed; it takes effect at the next restart')
    })
  })
  process.on('SIGTERM', () => stop('SIGTERM', 0))
  process.on('SIGINT', () => stop('SIGINT', 0))
}

/**
 * A cluster worker (src/cluster/worker.ts): a data plane the primary drives
 * over IPC. It writes its own log lines (with its worker id) to the shared
 * stdout and stderr. SIGTERM and SIGINT drain it (a terminal's Ctrl-C or
 * systemd's stop reach every process of the group); SIGHUP is the primary's.
 */
function startClusterWorker(opts: StartOptions): void {
  const id = cluster.worker?.id ?? 0
  const logDest = sharedStdio(2)
  const log = createLogger({ level: opts.logLevel, destination: logDest }).child({ role: 'worker', worker: id })
  let accessDest: ReturnType<typeof sharedStdio> | undefined
  const channel: WorkerChannel = {
    send: (message, sent) => void process.send?.(message, undefined, undefined, () => sent?.()),
    onMessage: (handler) => void process.on('message', handler),
    onDisconnect: (handler) => void process.on('disconnect', handler),
  }
  const worker = new ClusterWorker(channel, {
    log,
    createDataPlane: (configPath, ticketKeys) => {
      const plane = createDataPlane({ source: { baseDir: dirname(configPath), env: process.env }, clock: systemClock, log, worker: { id, ticketKeys } })
      accessDest = plane.accessDest as ReturnType<typeof sharedStdio>
      return plane
    },
    exit: (code) => {
      for (const dest of [accessDest, logDest]) {
        try {
          dest?.flushSync()
        } catch {
          // Not open yet: nothing was written.
        }
      }
      process.exit(code)
    },
  })
  process.on('SIGTERM', () => worker.stop())
  process.on('SIGINT', () => worker.stop())
  process.on('SIGHUP', () => log.warn({ primary: process.ppid }, 'SIGHUP ignored: workers reload with the primary; signal the primary (its pid is in the pid file)'))
  worker.start()
}
