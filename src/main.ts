/**
 * The composition root: reads the environment, builds the clock, loggers and
 * source context, picks every implementation, and wires signals. No other
 * module reads process.env or creates a logger.
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { pino } from 'pino'
import { formatIssue } from './config/issues.js'
import { loadConfig } from './config/load.js'
import { createMetricsRegistry } from './observability/metrics.js'
import { startMetricsServer, type MetricsServer } from './observability/metrics-server.js'
import { ensureManagedCertificatesAtStart, startPkiService, type PkiService } from './control/pki-service.js'
import { AccessLog, accessLogOptions } from './proxy/access-log.js'
import { RevocationSet } from './proxy/revocation-set.js'
import { Gateway } from './runtime.js'
import { systemClock } from './shared/clock.js'
import { createLogger } from './shared/log.js'

export interface StartOptions {
  /** Config file; when absent, the development environment is generated in dataDir. */
  readonly configPath: string | undefined
  readonly dataDir: string
  /** Port of the dev listener (dev mode only). */
  readonly devPort: number
  readonly logLevel: string
  /** Write a pid file here so `portcullis reload` can signal us. */
  readonly pidFile: string
}

/** Prints to stdout for the operator (not a log line). */
function say(text: string): void {
  process.stdout.write(`${text}\n`)
}

/** Starts the gateway and wires SIGHUP (reload) and SIGTERM/SIGINT (drain and exit). */
export async function start(opts: StartOptions): Promise<void> {
  const log = createLogger({ level: opts.logLevel })
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
  // The access log has its own destination: stdout by default, or the configured file.
  const accessDest = pino.destination({ fd: 1, sync: false })
  const accessLog = new AccessLog(pino(accessLogOptions, accessDest))
  // One revoked set for the process: the listeners enforce it, the PKI service fills it.
  const revocation = new RevocationSet()
  const metrics = createMetricsRegistry()
  const gateway = new Gateway({ source, clock, log, accessLog, revocation, metrics })
  // Managed certificates first, so listeners may point at files that do not
  // exist yet (a fresh install): load without reading referenced files, which
  // would refuse exactly those. A config that does not load skips this;
  // apply() below reports its issues.
  const preloaded = loadConfig(text, configPath, { source, readFiles: false })
  const startPki = preloaded.ok ? preloaded.config.pki : undefined
  if (startPki && startPki.managedCertificates.length > 0) {
    try {
      await ensureManagedCertificatesAtStart(startPki, { source, clock, log })
    } catch (err) {
      log.error({ err: (err as Error).message }, 'cannot prepare the managed certificates')
      await stopDev?.()
      log.flush?.()
      process.exitCode = 1
      return
    }
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
      pki = await startPkiService(pkiConfig, {
        source,
        clock,
        log,
        revocation,
        metrics,
        // Renewed managed certificates reach the listeners by a reload; a
        // refused one keeps the old certificates serving.
        onRenewed: async (renewed) => {
          const r = await gateway.reload()
          if (r.ok) log.info({ renewed, generation: r.generation }, 'managed certificates renewed; reload applied')
          else log.error({ renewed, issues: r.issues.map(formatIssue) }, 'managed certificates renewed but the reload was refused; the previous certificates keep serving')
          return r.ok // false: the service retries the reload at its next check
        },
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
  mkdirSync(dirname(opts.pidFile), { recursive: true })
  writeFileSync(opts.pidFile, `${process.pid}\n`)

  process.on('SIGHUP', () => {
    let next: string
    try {
      next = readFileSync(configPath, 'utf8')
    } catch (err) {
      log.error({ file: configPath, code: (err as NodeJS.ErrnoException).code }, 'reload: cannot read config; keeping the running one')
      return
    }
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
