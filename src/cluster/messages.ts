/**
 * The messages between the cluster primary and its workers, over Node's
 * cluster IPC channel (a socketpair private to the two processes). Every
 * type starts with "portcullis:" so other users of the channel (Node's own
 * cluster messages, prom-client's aggregator) pass by untouched.
 *
 * Ticket keys travel as base64 in `ticket-key` and `init`: key material, so
 * no message is ever logged whole.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client'
import type { CertificateSighting } from '../proxy/certificate-sightings.js'
import type { RevokedCertificate } from '../proxy/revocation-set.js'

/** Primary → worker. */
export type ToWorker =
  /** First message: the config text the primary checked, and the state a worker needs before it accepts a connection. */
  | {
      readonly type: 'portcullis:init'
      readonly configPath: string
      readonly text: string
      readonly revoked: readonly RevokedCertificate[]
      /** Current ticket key per listener name, base64. */
      readonly ticketKeys: readonly (readonly [string, string])[]
      /** Issuers (SHA-256 of their DER) whose client certificates' sightings the CA service records. */
      readonly watchedIssuers: readonly string[]
    }
  /** Apply this text (a reload, or the same text again to re-read certificate files). */
  | { readonly type: 'portcullis:apply'; readonly id: number; readonly text: string }
  /** Revocations the primary's PKI service synced. */
  | { readonly type: 'portcullis:revoked'; readonly entries: readonly RevokedCertificate[] }
  /** A listener's new ticket key, base64. */
  | { readonly type: 'portcullis:ticket-key'; readonly listener: string; readonly key: string }
  /** Drain and exit 0. */
  | { readonly type: 'portcullis:stop' }
  /** Send your registry's metrics (a scrape of the primary's /metrics). */
  | { readonly type: 'portcullis:metrics-request'; readonly id: number }

/** The outcome of an apply in one worker; issues already formatted as file:line:col lines. */
export type WorkerApplyResult = { readonly ok: true; readonly generation: number } | { readonly ok: false; readonly issues: readonly string[] }

/** Worker → primary. */
export type FromWorker =
  /** The worker listens for messages now; the primary answers with init. */
  | { readonly type: 'portcullis:hello' }
  /** Answer to init: serving, with the bound port per listener. */
  | { readonly type: 'portcullis:ready'; readonly generation: number; readonly ports: Readonly<Record<string, number>> }
  /** Answer to init: the config was refused here; the worker exits next. */
  | { readonly type: 'portcullis:refused'; readonly issues: readonly string[] }
  /** Answer to apply. */
  | { readonly type: 'portcullis:applied'; readonly id: number; readonly result: WorkerApplyResult }
  /** Client certificates seen since the last message, for the CA service's inventory (`dropped`: over the worker's bound). */
  | { readonly type: 'portcullis:sightings'; readonly sightings: readonly CertificateSighting[]; readonly dropped: number }
  /** Answer to metrics-request: the worker registry's `getMetricsAsJSON()`. */
  | { readonly type: 'portcullis:metrics'; readonly id: number; readonly metrics: readonly WorkerMetric[] }
  /** A listener started taking ticket keys: send its current key, rotated every intervalMs. */
  | { readonly type: 'portcullis:ticket-key-request'; readonly listener: string; readonly intervalMs: number }

/** One metric as prom-client serialises it for aggregation. */
export type WorkerMetric = MetricObjectWithValues<MetricValue<string>>

/** Whether an IPC message is one of ours (the channel also carries Node's and libraries' messages). */
export function isPortcullisMessage(message: unknown): message is { readonly type: string } {
  return typeof message === 'object' && message !== null && typeof (message as { type?: unknown }).type === 'string' && (message as { type: string }).type.startsWith('portcullis:')
}
