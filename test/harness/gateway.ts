/**
 * A real gateway in the test process, from YAML text: real listeners on
 * 127.0.0.1 port 0, real upstream pools. Access-log lines and process logs are
 * captured as objects so tests can assert on reason codes.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino } from 'pino'
import { formatIssue } from '../../src/config/issues.js'
import { AccessLog, accessLogOptions } from '../../src/proxy/access-log.js'
import type { Registry } from '../../src/observability/metrics.js'
import type { CertificateSightings } from '../../src/proxy/certificate-sightings.js'
import { RevocationSet } from '../../src/proxy/revocation-set.js'
import type { OcspStapler } from '../../src/proxy/tls/ocsp-stapling.js'
import { Gateway, type ApplyResult } from '../../src/runtime.js'
import { systemClock, type Clock } from '../../src/shared/clock.js'

export type LogLine = Record<string, unknown> & { type?: string; reason?: string; status?: number }

export interface TestGateway {
  readonly gateway: Gateway
  /** Bound port of a listener (default: the first). */
  port(listener?: string): number
  /** Access-log lines (requests and refused handshakes), oldest first. */
  readonly logs: LogLine[]
  /** Process log lines (warnings, errors). */
  readonly events: LogLine[]
  /** Writes new YAML to the same file and applies it. */
  reload(yaml: string): Promise<ApplyResult>
  close(): Promise<void>
}

function collector(into: LogLine[]): Writable {
  return new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString('utf8').split('\n')) if (line) into.push(JSON.parse(line) as LogLine)
      done()
    },
  })
}

/** Starts a gateway; rejects with the formatted issues when the config is refused. */
export async function startGateway(opts: {
  yaml: string
  dir?: string
  clock?: Clock
  env?: Record<string, string>
  revocation?: RevocationSet
  metrics?: Registry
  /** OCSP stapling of the listeners' certificates; without it nothing is stapled. */
  stapler?: OcspStapler
  /** Collector of presented client certificates (pass the same one to the PKI service). */
  sightings?: CertificateSightings
}): Promise<TestGateway> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), 'portcullis-gw-'))
  const file = join(dir, 'gateway.yaml')
  writeFileSync(file, opts.yaml)
  const logs: LogLine[] = []
  const events: LogLine[] = []
  const gateway = new Gateway({
    source: { baseDir: dir, env: { ...opts.env } },
    clock: opts.clock ?? systemClock,
    log: pino({ level: 'info' }, collector(events)),
    accessLog: new AccessLog(pino(accessLogOptions, collector(logs))),
    revocation: opts.revocation ?? new RevocationSet(),
    metrics: opts.metrics,
    stapler: opts.stapler,
    sightings: opts.sightings,
  })
  const result = await gateway.apply(opts.yaml, file)
  if (!result.ok) throw new Error(`config refused:\n${result.issues.map(formatIssue).join('\n')}`)
  const first = gateway.current().config.listeners[0]!.name
  return {
    gateway,
    port: (listener = first) => gateway.port(listener),
    logs,
    events,
    reload: async (yaml) => {
      writeFileSync(file, yaml)
      return gateway.apply(yaml, file)
    },
    close: () => gateway.stop(),
  }
}
