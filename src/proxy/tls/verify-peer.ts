/**
 * The per-connection client-certificate decision, run at 'secureConnection'
 * for full AND resumed handshakes, with the same checks for both.
 *
 * What Node 20 / OpenSSL 3.0 give on a resumed session (measured in
 * test/integration/tls-resumption.test.ts):
 * - the leaf (`getPeerCertificate()`) comes back from the session, for TLS
 *   1.2 and 1.3 tickets alike; the client's intermediates do not;
 * - `authorizationError` is the verdict of the handshake that made the
 *   session, under the trust (and the server name) of that time;
 * - the SNI callback does not run, so a session made for a.example resumes
 *   under SNI b.example, and an unknown name is not refused;
 * - TLS 1.3 reports the SNI of the resuming ClientHello; TLS 1.2 reports none.
 *
 * So nothing here trusts the session: the server name is re-resolved, the
 * path is rebuilt to an anchor trusted NOW for that name (signatures checked,
 * trust.ts), validity is checked with the injected Clock, usage is checked.
 * OpenSSL's verdict is one more gate (it also knows critical extensions,
 * path length and name constraints), never the only one.
 *
 * Checks run from the most fundamental: server name, presence, parse, path
 * (trust), validity, usage, chain policy (chain-policy.ts: basic constraints
 * and path length, name constraints, key strength, leaf lifetime), then
 * OpenSSL's verdict; the first failure decides.
 *
 * Cost per connection (EC P-256 leaf signed by an anchor or a known
 * intermediate, measured on the test machine): getPeerCertificate(false)
 * ~13 µs, DER read ~25 µs, a signature check per CA on the path ~50 µs,
 * SHA-256 ~5 µs: verifyPeer measured ~0.17 ms whole, against ~1 ms of
 * handshake crypto. Node's full chain
 * (getPeerCertificate(true), ~180 µs) is fetched only when an issuer is not
 * known yet. Never call `socket.getPeerX509Certificate()` on these sockets:
 * in Node 20 it empties the peer chain that getPeerCertificate(true) reads.
 */
import type { DetailedPeerCertificate, PeerCertificate, TLSSocket } from 'node:tls'
import type { Identity } from '../context.js'
import type { Clock } from '../../shared/clock.js'
import type { Denial, Reason } from '../../shared/reasons.js'
import { Eku, KeyUsage, readCertFields, type CertFields } from './cert-fields.js'
import { checkChainPolicy } from './chain-policy.js'
import { identityFromCertificate } from './identity.js'
import { describeSignatureAlgorithm } from './signature.js'
import { buildPath, parseCertificate, type ParsedCert, type IntermediatePool, type TrustGroup } from './trust.js'

/**
 * The verdict on one connection: who it is (undefined = anonymous, allowed by
 * the mode) or why not. `path` is the verified path above the leaf (issuer
 * first, anchor last), for the revocation check of external CAs.
 */
export type PeerVerdict = { readonly identity: Identity | undefined; readonly path?: readonly ParsedCert[] } | { readonly denial: Denial }

/** What the listener decided at compile time, as verification needs it. */
export interface PeerPolicy {
  readonly mode: 'required' | 'optional' | 'none'
  /** CA certificates above the leaf, the anchor included. */
  readonly maxChainDepth: number
  /** Longest accepted leaf lifetime, ms (chain-policy.ts). */
  readonly maxLeafValidity: number
  readonly clock: Clock
  readonly pool: IntermediatePool
  /** For a lowercased SNI name (undefined = none sent): the trust that applies, and whether a certificate serves it. */
  route(serverName: string | undefined): { readonly group: TrustGroup | undefined; readonly hasCertificate: boolean }
}

/** OpenSSL verify codes (as Node names them) that have a more precise reason than cert_invalid. */
const opensslReasons: Readonly<Record<string, Reason>> = {
  UNABLE_TO_GET_ISSUER_CERT: 'cert_unknown_ca',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'cert_unknown_ca',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'cert_unknown_ca',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'cert_unknown_ca',
  SELF_SIGNED_CERT_IN_CHAIN: 'cert_unknown_ca',
  CERT_UNTRUSTED: 'cert_unknown_ca',
  CERT_HAS_EXPIRED: 'cert_expired',
  CERT_NOT_YET_VALID: 'cert_not_yet_valid',
  INVALID_PURPOSE: 'cert_wrong_usage',
  CERT_REVOKED: 'cert_revoked',
}

function deny(reason: Reason, detail: string): PeerVerdict {
  return { denial: { reason, detail } }
}

const iso = (ms: number) => new Date(ms).toISOString()

/** Client-controlled text in a detail is bounded: details go to every log line of the connection. */
const clip = (text: string, max = 200) => (text.length > max ? `${text.slice(0, max)}…` : text)

/** Node's `authorizationError` is typed as an Error but holds the OpenSSL code as a string. */
function opensslCode(socket: TLSSocket): string | undefined {
  const err = socket.authorizationError as unknown
  if (err === null || err === undefined) return undefined
  if (typeof err === 'string') return err
  return (err as { code?: string }).code ?? String(err)
}

/**
 * The client's intermediates from Node's chain (pooled copies reused, so a
 * known intermediate is not parsed again). At most `limit`: a longer path
 * is refused anyway, and this bounds the parsing a client can cause.
 */
function presentedIntermediates(socket: TLSSocket, pool: IntermediatePool, limit: number): ParsedCert[] {
  const out: ParsedCert[] = []
  const peer = socket.getPeerCertificate(true) as DetailedPeerCertificate | null
  if (!peer) return out
  let link = peer.issuerCertificate
  const seen = new Set<unknown>([peer])
  // A self-signed certificate (Node marks it by linking it to itself) is an anchor or nothing: only
  // the trust bundle supplies anchors, so it is skipped unparsed (Node appends the default store's root here).
  while (link && link.raw && !seen.has(link) && link.issuerCertificate !== link && out.length < limit) {
    seen.add(link)
    const fingerprint = link.fingerprint256.replace(/:/g, '').toLowerCase()
    try {
      out.push(pool.get(fingerprint) ?? parseCertificate(link.raw))
    } catch {
      // Unparseable extra certificates are not candidates; the path check decides.
    }
    link = link.issuerCertificate
  }
  return out
}

function checkValidity(fields: CertFields, now: number, what: string): PeerVerdict | undefined {
  if (now > fields.notAfter) return deny('cert_expired', `${clip(what)}expired at ${iso(fields.notAfter)}`)
  if (now < fields.notBefore) return deny('cert_not_yet_valid', `${clip(what)}valid from ${iso(fields.notBefore)}`)
  return undefined
}

/**
 * RFC 5280 4.2.1.3 and 4.2.1.12 for a TLS client: extendedKeyUsage, when
 * present, must list clientAuth (anyExtendedKeyUsage is not enough, as for
 * OpenSSL); keyUsage, when present, must allow digitalSignature (TLS 1.2 ECDHE
 * and 1.3 client authentication both sign). A CA certificate is not accepted
 * as a client identity.
 */
function checkUsage(fields: CertFields): PeerVerdict | undefined {
  if (fields.extKeyUsage && !fields.extKeyUsage.includes(Eku.clientAuth)) {
    return deny('cert_wrong_usage', clip(`extendedKeyUsage lacks clientAuth (has ${fields.extKeyUsage.join(', ')})`))
  }
  if (fields.keyUsage && !fields.keyUsage.has(KeyUsage.digitalSignature)) return deny('cert_wrong_usage', 'keyUsage lacks digitalSignature')
  if (fields.isCa) return deny('cert_wrong_usage', 'a CA certificate cannot be a client identity')
  return undefined
}

/** Decides one connection. Never throws for anything a client can send. */
export function verifyPeer(socket: TLSSocket, policy: PeerPolicy): PeerVerdict {
  const isResumed = socket.isSessionReused()
  const sni: unknown = socket.servername
  const serverName = typeof sni === 'string' && sni !== '' ? sni.toLowerCase() : undefined
  // A resumed TLS 1.2 session reports no server name in Node 20 (see module doc); it is judged
  // as a connection without SNI but not refused for the missing name, which it may well have sent.
  const isNameHidden = serverName === undefined && isResumed && socket.getProtocol() !== 'TLSv1.3'
  const { group, hasCertificate } = policy.route(serverName)
  if (!hasCertificate && !isNameHidden) {
    return deny('misdirected_request', serverName === undefined ? 'no server name sent' : `no certificate for server name ${clip(serverName)}`)
  }
  if (policy.mode === 'none') return { identity: undefined }

  // Node returns {} when the client sent no certificate.
  const der: Buffer | undefined = (socket.getPeerCertificate(false) as Partial<PeerCertificate> | null)?.raw
  if (!der) return policy.mode === 'required' ? deny('client_cert_required', 'no client certificate') : { identity: undefined }
  if (!group) return deny('cert_unknown_ca', 'no trust bundle applies') // unreachable when mode != none: compile requires one

  let fields: CertFields
  try {
    fields = readCertFields(der)
  } catch (err) {
    return deny('cert_invalid', `malformed certificate: ${clip((err as Error).message)}`)
  }

  let presented: ParsedCert[] | undefined
  const path = buildPath(
    { fields },
    group,
    () => (presented ??= presentedIntermediates(socket, policy.pool, policy.maxChainDepth)),
    policy.pool,
    policy.maxChainDepth,
  )
  if (!path.ok) {
    switch (path.problem) {
      case 'unknown_ca': {
        const scope = serverName === undefined ? '' : ` for ${clip(serverName)}`
        const when = isResumed ? ' (resumed session)' : ''
        return path.isSelfSigned
          ? deny('cert_unknown_ca', `self-signed certificate ${clip(fields.subject.text)}${scope}${when}`)
          : deny('cert_unknown_ca', `untrusted issuer ${clip(path.issuer)}${scope}${when}`)
      }
      case 'too_long':
        return deny('cert_chain_too_long', `chain of ${path.depth} CA certificates is longer than maxChainDepth ${policy.maxChainDepth}`)
      case 'not_ca':
        return deny('cert_path_length', `issuer ${clip(path.subject)} is not a CA (basicConstraints cA is not TRUE)`)
      case 'unsupported_signature': {
        const which = path.isLeaf ? 'leaf' : `CA ${clip(path.subject)}`
        return deny('cert_weak_signature', `${which}: signature algorithm ${describeSignatureAlgorithm(path.algorithm)} is not accepted; SHA-256 or stronger is required`)
      }
    }
  }

  const now = policy.clock.now()
  const timeProblem = checkValidity(fields, now, '') ?? path.cas.reduce<PeerVerdict | undefined>((found, ca) => found ?? checkValidity(ca.fields, now, `CA ${ca.fields.subject.text} `), undefined)
  if (timeProblem) return timeProblem

  const usageProblem = checkUsage(fields)
  if (usageProblem) return usageProblem

  // Basic constraints and path length, name constraints, key strength, leaf lifetime: on every connection, resumed or not.
  const policyProblem = checkChainPolicy(fields, path.cas, { maxLeafValidity: policy.maxLeafValidity })
  if (policyProblem) return { denial: policyProblem }

  const code = opensslCode(socket)
  if (code !== undefined) return deny(opensslReasons[code] ?? 'cert_invalid', `openssl: ${code}`)

  const intermediates = path.cas.slice(0, -1)
  for (const ca of intermediates) policy.pool.add(ca)
  return { identity: identityFromCertificate(der, fields, { issuerDer: path.cas[0]!.der, intermediatesDer: intermediates.map((c) => c.der) }), path: path.cas }
}
