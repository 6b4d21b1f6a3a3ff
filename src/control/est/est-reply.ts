/**
 * How the EST server answers: certificates as base64 certs-only PKCS#7, and
 * every refusal as RFC 9457 problem+json with a reason code from
 * src/shared/reasons.ts (RFC 7030 §4.2.3 lets error bodies be any
 * human-readable content; a problem document is one a script can match on).
 *
 * Decisions:
 * - Unlike the data plane's `sendDenial`, a CSR refusal carries the failing
 *   policy `rule` and its `detail`, and a re-enrollment mismatch its
 *   `detail`: they describe the requester's own CSR and tell it what to fix
 *   (policy.ts says rule and detail are safe to show). Authentication
 *   failures never carry a detail: it stays in the log.
 * - Every answer is `Cache-Control: no-store` (it depends on who asked) and
 *   `X-Content-Type-Options: nosniff`.
 */
import type { ServerResponse } from 'node:http'
import { problemType } from '../../proxy/reply.js'
import { reasons, type Reason } from '../../shared/reasons.js'
import { base64Lines, certsOnlyPkcs7 } from './pkcs7.js'

/** A refusal as the EST server renders it. */
export interface EstRefusal {
  readonly reason: Reason
  /** For the log; sent to the client only when `isDetailPublic`. */
  readonly detail: string
  /** The CSR policy rule that failed (policy.ts `csrRefusalRules`), sent to the client. */
  readonly rule?: string
  readonly isDetailPublic?: boolean
  readonly headers?: Readonly<Record<string, string>>
}

function common(res: ServerResponse, requestId: string): void {
  res.setHeader('Cache-Control', 'no-store')
  res.setHeader('X-Content-Type-Options', 'nosniff')
  res.setHeader('X-Request-Id', requestId)
}

/** Answers with a problem document; closes the connection when the request body may not have been read. */
export function sendEstRefusal(res: ServerResponse, refusal: EstRefusal, requestId: string): void {
  if (res.headersSent) {
    res.destroy()
    return
  }
  const { status, title } = reasons[refusal.reason]
  const problem: Record<string, unknown> = { type: problemType(refusal.reason), title, status, reason: refusal.reason, requestId }
  if (refusal.rule) problem.rule = refusal.rule
  if (refusal.isDetailPublic) problem.detail = refusal.detail
  const body = JSON.stringify(problem)
  common(res, requestId)
  for (const [name, value] of Object.entries(refusal.headers ?? {})) res.setHeader(name, value)
  if (!res.req.readableEnded) res.setHeader('Connection', 'close')
  res.writeHead(status, { 'Content-Type': 'application/problem+json', 'Content-Length': Buffer.byteLength(body) })
  res.end(body)
}

/**
 * Answers 200 with `certificates` (DER) as base64 certs-only PKCS#7.
 * `smime-type=certs-only` is set for enrollment answers (RFC 7030 §4.2.3);
 * `/cacerts` is plain `application/pkcs7-mime` (§4.1.3).
 */
export function sendCertificates(res: ServerResponse, certificates: readonly Uint8Array[], requestId: string, isEnrollment: boolean): void {
  const body = base64Lines(certsOnlyPkcs7(certificates))
  common(res, requestId)
  res.writeHead(200, {
    'Content-Type': isEnrollment ? 'application/pkcs7-mime; smime-type=certs-only' : 'application/pkcs7-mime',
    'Content-Transfer-Encoding': 'base64',
    'Content-Length': Buffer.byteLength(body),
  })
  res.end(body)
}
