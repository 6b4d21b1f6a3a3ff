/**
 * What the EST server does with one request: route, authenticate, judge the
 * CSR, issue, record, answer. `est-server.ts` owns the TLS server around it.
 *
 *   GET  /.well-known/est/cacerts         issuing CA and root (certs-only PKCS#7)
 *   POST /.well-known/est/simpleenroll    token (Basic password or Bearer), or an approved partner's certificate
 *   POST /.well-known/est/simplereenroll  the current certificate over mTLS; same subject and SANs
 *
 * Decisions:
 * - Who may enroll: a token names its partner and profile; an approved
 *   partner (a certificate of ours whose inventory record names a partner
 *   with a policy in `pki.partners`) gets the first profile of its policy.
 *   An Authorization header wins over a certificate: the client said how it
 *   authenticates. Either way the CSR goes through `signCsr` under that
 *   partner's policy (the same mapping as `portcullis ca sign`), so
 *   refusals name the exact rule.
 * - Re-enrollment copies partner and profile from the inventory record of
 *   the presented certificate, never from the request; the lifetime is the
 *   policy's (the profile default capped by the partner's `maxLifetime`).
 * - Cheap checks first: an anonymous enroll gets 401 before its body is
 *   read; the body is capped (`maxEstBodyBytes`) and parsed before a token
 *   is claimed, so a malformed request never spends one.
 * - A token is used up only once the certificate is in the inventory; any
 *   refusal or failure before that gives it back (est-tokens.ts). A
 *   certificate that could not be recorded is never returned.
 * - The answer to an enrollment holds only the new certificate (RFC 7030
 *   §4.2.3); the chain comes from /cacerts.
 * - Refusals are values (`EstRefusal`), as Denials are in the data plane;
 *   exceptions are bugs or storage failures, answered `internal_error`.
 * - Logs: one line per issued certificate (serial, partner, profile,
 *   method, token id, client address) and one per refusal (reason, detail);
 *   never the token, the Authorization header or key material.
 */
import { randomUUID, X509Certificate } from 'node:crypto'
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import type { LoadedCa } from '../../pki/ca-load.js'
import { signCsr, type CsrSigned } from '../../pki/ca-sign-csr.js'
import type { CompiledPartnerPolicy } from '../../pki/policy.js'
import { isProfileName, type ProfileName } from '../../pki/profiles.js'
import type { Clock } from '../../shared/clock.js'
import type { Logger } from '../../shared/log.js'
import type { CertificateInventory, KeyValueStore } from '../../storage/types.js'
import { toInventoryRecord } from '../inventory-record.js'
import { verifyClientCert, type VerifiedClient } from './est-client-cert.js'
import { estBodyToPem, maxEstBodyBytes, reenrollMismatch } from './est-csr.js'
import { sendCertificates, sendEstRefusal, type EstRefusal } from './est-reply.js'
import { EnrollmentTokens, type TokenClaim } from './est-tokens.js'

/** What handling needs: the CA, its storage, the partners' compiled policies. */
export interface EstHandlerDeps {
  readonly ca: LoadedCa
  readonly inventory: CertificateInventory
  readonly kv: KeyValueStore
  readonly policies: ReadonlyMap<string, CompiledPartnerPolicy>
  readonly clock: Clock
  readonly log: Logger
}

/** The path prefix of RFC 7030 §3.2.2 (no CA label: one CA per gateway). */
export const EST_PATH = '/.well-known/est/'
const CHALLENGE = { 'WWW-Authenticate': 'Basic realm="portcullis-est", charset="UTF-8", Bearer realm="portcullis-est"' }

/** Who asked, once authenticated: the partner's policy and the profile to issue. */
interface Enrollee {
  readonly method: 'token' | 'partner_certificate' | 'reenroll'
  readonly policy: CompiledPartnerPolicy
  readonly profile: ProfileName
  readonly claim?: TokenClaim
  readonly client?: VerifiedClient
}

function isRefusal<T extends object | string>(value: T | EstRefusal): value is EstRefusal {
  return typeof value === 'object' && 'reason' in value
}

/** Handles EST requests; `handle` never rejects. */
export class EstHandler {
  readonly tokens: EnrollmentTokens

  constructor(private readonly deps: EstHandlerDeps) {
    this.tokens = new EnrollmentTokens(deps.kv)
  }

  /** Answers one request: the certificates, a refusal, or `internal_error` for a bug or a storage failure. */
  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const requestId = randomUUID()
    const path = (req.url ?? '').split('?', 1)[0] ?? ''
    const client = req.socket.remoteAddress
    try {
      const refusal = await this.serve(req, res, path, requestId)
      if (!refusal) return
      this.deps.log.warn({ requestId, path, reason: refusal.reason, ...(refusal.rule ? { rule: refusal.rule } : {}), detail: refusal.detail, client }, 'est: request refused')
      sendEstRefusal(res, refusal, requestId)
    } catch (err) {
      this.deps.log.error({ requestId, path, err: err instanceof Error ? err.message : String(err), client }, 'est: request failed')
      sendEstRefusal(res, { reason: 'internal_error', detail: 'see the log' }, requestId)
    }
  }

  private async serve(req: IncomingMessage, res: ServerResponse, path: string, requestId: string): Promise<EstRefusal | undefined> {
    const op = path.startsWith(EST_PATH) ? path.slice(EST_PATH.length) : ''
    const method = op === 'cacerts' ? 'GET' : op === 'simpleenroll' || op === 'simplereenroll' ? 'POST' : undefined
    if (!method) return { reason: 'route_not_found', detail: path }
    if (req.method !== method) return { reason: 'method_not_allowed', detail: `${req.method ?? ''} ${path}`, headers: { Allow: method } }
    if (op === 'cacerts') {
      sendCertificates(res, [new Uint8Array(this.deps.ca.intermediate.rawData), new Uint8Array(this.deps.ca.root.rawData)], requestId, false)
      return undefined
    }
    const isReenroll = op === 'simplereenroll'
    const missing = missingCredentials(req, isReenroll)
    if (missing) return missing
    const csrPem = await readCsr(req)
    if (isRefusal(csrPem)) return csrPem
    const enrollee = isReenroll ? await this.reenrollee(req, csrPem) : await this.enrollee(req)
    if (isRefusal(enrollee)) return enrollee

    let signed: CsrSigned | EstRefusal | undefined
    try {
      signed = await this.issue(enrollee, csrPem)
    } finally {
      // Anything short of a recorded certificate gives the token back.
      if (enrollee.claim && (signed === undefined || isRefusal(signed))) {
        await this.tokens.release(enrollee.claim).catch((err: unknown) => {
          this.deps.log.error({ requestId, err: String(err) }, 'est: could not give the token back; it is lost')
        })
      }
    }
    if (isRefusal(signed)) return signed
    if (enrollee.claim) {
      await this.tokens.complete(enrollee.claim, signed.record.serial, this.deps.clock.now()).catch((err: unknown) => {
        this.deps.log.error({ requestId, err: String(err) }, 'est: could not record the used token; it is used up all the same')
      })
    }
    this.deps.log.info(
      {
        requestId,
        method: enrollee.method,
        partner: enrollee.policy.name,
        profile: enrollee.profile,
        serial: signed.record.serial,
        subject: signed.record.subject,
        notAfter: new Date(signed.record.notAfter).toISOString(),
        ...(enrollee.claim ? { tokenId: enrollee.claim.record.hash.slice(0, 16) } : {}),
        ...(enrollee.client ? { previousSerial: enrollee.client.record.serial } : {}),
        client: req.socket.remoteAddress,
      },
      'est: certificate issued',
    )
    sendCertificates(res, [new Uint8Array(new X509Certificate(signed.certPem).raw)], requestId, true)
    return undefined
  }

  /** Signs under the enrollee's policy and records the certificate; a policy refusal names its rule. */
  private async issue(enrollee: Enrollee, csrPem: string): Promise<CsrSigned | EstRefusal> {
    const signed = await signCsr(this.deps.ca, csrPem, { profile: enrollee.profile, partnerPolicy: enrollee.policy, clock: this.deps.clock })
    if (!signed.ok) {
      return { reason: signed.rule === 'csr_malformed' ? 'est_csr_malformed' : 'est_csr_refused', rule: signed.rule, detail: signed.detail, isDetailPublic: true }
    }
    await this.deps.inventory.add(toInventoryRecord(signed.record))
    return signed
  }

  /** simpleenroll: a token from the Authorization header, else an approved partner's certificate. */
  private async enrollee(req: IncomingMessage): Promise<Enrollee | EstRefusal> {
    const authorization = req.headers.authorization
    if (authorization === undefined) {
      const client = await this.verifiedClient(req)
      if (isRefusal(client)) return client
      const policy = this.policyOf(client)
      if (isRefusal(policy)) return policy
      return { method: 'partner_certificate', policy, profile: [...policy.allowedProfiles][0]!, client }
    }
    const token = tokenFrom(authorization)
    if (token === undefined) return { reason: 'est_token_invalid', detail: 'Authorization is neither Basic nor Bearer', headers: CHALLENGE }
    const claimed = await this.tokens.claim(token, this.deps.clock.now())
    if (!claimed.ok) return { reason: claimed.reason, detail: claimed.detail }
    const { partner, profile } = claimed.record
    const policy = this.deps.policies.get(partner)
    if (!policy || !isProfileName(profile)) {
      await this.tokens.release(claimed)
      return { reason: 'est_partner_unknown', detail: `the token is for partner "${partner}", which has no policy in pki.partners` }
    }
    return { method: 'token', policy, profile, claim: claimed }
  }

  /** simplereenroll: the current certificate, and a CSR that keeps its subject and SANs. */
  private async reenrollee(req: IncomingMessage, csrPem: string): Promise<Enrollee | EstRefusal> {
    const client = await this.verifiedClient(req)
    if (isRefusal(client)) return client
    const policy = this.policyOf(client)
    if (isRefusal(policy)) return policy
    const profile = client.record.profile
    if (!isProfileName(profile)) return { reason: 'est_partner_unknown', detail: `serial ${client.record.serial} has profile "${profile}"` }
    let mismatch: string | undefined
    try {
      mismatch = reenrollMismatch(csrPem, client.cert)
    } catch {
      return { reason: 'est_csr_malformed', rule: 'csr_malformed', detail: 'not a PKCS#10 request', isDetailPublic: true }
    }
    if (mismatch) return { reason: 'est_reenroll_mismatch', detail: mismatch, isDetailPublic: true }
    return { method: 'reenroll', policy, profile, client }
  }

  private async verifiedClient(req: IncomingMessage): Promise<VerifiedClient | EstRefusal> {
    const der = peerCertificate(req)
    if (!der) return { reason: 'client_cert_required', detail: 'no client certificate presented' }
    return verifyClientCert(der, this.deps)
  }

  private policyOf(client: VerifiedClient): CompiledPartnerPolicy | EstRefusal {
    const partner = client.record.partner
    const policy = partner === undefined ? undefined : this.deps.policies.get(partner)
    if (policy) return policy
    const why = partner === undefined ? 'was not issued to a partner' : `is for partner "${partner}", which has no policy in pki.partners`
    return { reason: 'est_partner_unknown', detail: `serial ${client.record.serial} ${why}` }
  }
}

/** 401 before reading anything when the request carries no credential at all. */
function missingCredentials(req: IncomingMessage, isReenroll: boolean): EstRefusal | undefined {
  if (peerCertificate(req)) return undefined
  if (isReenroll) return { reason: 'client_cert_required', detail: 'simplereenroll needs the current certificate over mTLS' }
  if (req.headers.authorization === undefined) return { reason: 'est_auth_required', detail: 'no token and no client certificate', headers: CHALLENGE }
  return undefined
}

/**
 * The body as a PEM CSR: content type, size cap, base64 of DER. An
 * oversized body is left unread (the refusal closes the connection).
 */
async function readCsr(req: IncomingMessage): Promise<string | EstRefusal> {
  const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase()
  if (type !== 'application/pkcs10') return { reason: 'est_unsupported_media_type', detail: `Content-Type "${type}"` }
  const declared = Number(req.headers['content-length'] ?? 0)
  if (declared > maxEstBodyBytes) return { reason: 'payload_too_large', detail: `${declared} bytes announced` }
  const chunks: Buffer[] = []
  let size = 0
  // destroyOnReturn: false, so an early return leaves the socket for the 413.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    size += chunk.length
    if (size > maxEstBodyBytes) return { reason: 'payload_too_large', detail: `more than ${maxEstBodyBytes} bytes` }
    chunks.push(chunk)
  }
  const pem = estBodyToPem(Buffer.concat(chunks))
  return pem ?? { reason: 'est_csr_malformed', rule: 'csr_malformed', detail: 'the body must be base64 of a DER PKCS#10 request', isDetailPublic: true }
}

/** The DER leaf the client presented, if any. */
function peerCertificate(req: IncomingMessage): Uint8Array | undefined {
  const raw = (req.socket as TLSSocket).getPeerCertificate(false)?.raw
  return raw && raw.length > 0 ? new Uint8Array(raw) : undefined
}

/**
 * The token in `Authorization: Basic base64(user:token)` (RFC 7030 §3.2.3:
 * the password; the user name is ignored) or `Authorization: Bearer token`.
 */
function tokenFrom(header: string): string | undefined {
  const space = header.indexOf(' ')
  if (space < 0) return undefined
  const scheme = header.slice(0, space).toLowerCase()
  const value = header.slice(space + 1).trim()
  if (scheme === 'bearer') return value
  if (scheme !== 'basic') return undefined
  const decoded = Buffer.from(value, 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0 ? undefined : decoded.slice(colon + 1)
}
