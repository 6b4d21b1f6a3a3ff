/**
 * Reads an X.509 v2 CRL (RFC 5280 §5) from DER with the strict reader the
 * certificate code uses (der.ts): bounds-checked, no BER leniency. It runs in
 * the CRL worker (crl-worker.ts), so a CRL of several MB never blocks the
 * event loop; the result is plain data that crosses threads cheaply.
 *
 * What we can interpret, and what we refuse (`unusable`): a CRL is used only
 * as a *complete* CRL for its issuer's own certificates. We refuse rather
 * than guess:
 * - delta CRLs (deltaCRLIndicator): a delta is meaningless without its base;
 *   a base CRL's freshestCRL pointer is ignored, so a revocation published
 *   only in a delta is seen with the next base CRL;
 * - indirect CRLs (issuingDistributionPoint indirectCRL, or an entry's
 *   certificateIssuer): entries about another CA's certificates;
 * - partitioned-by-reason CRLs (onlySomeReasons) and attribute-certificate
 *   CRLs (onlyContainsAttributeCerts): they do not cover every reason or our
 *   certificates;
 * - any unknown critical extension, on the CRL or on an entry.
 * onlyContainsUserCerts / onlyContainsCACerts and the IDP's distribution
 * point names are kept as scope, checked per certificate (revocation-list.ts).
 *
 * Revoked serials come out as a sorted table of fixed-width keys (the
 * serial's bytes, left-padded with zeros to the widest serial of the CRL),
 * with dates and reasons in the same order: the data plane looks a serial up
 * by binary search without ever building a per-entry object (see
 * revocation-list.ts for why).
 */
import { DerError, DerReader, Tag, checkSameAlgorithm, readBoolean, readOid, readSignedEnvelope, readTime, type Tlv } from '../der.js'
import { readName } from '../dn.js'

const oidCrlNumber = '2.5.29.20'
const oidDeltaCrlIndicator = '2.5.29.27'
const oidIssuingDistributionPoint = '2.5.29.28'
const oidAuthorityKeyIdentifier = '2.5.29.35'
const oidFreshestCrl = '2.5.29.46'
const oidAuthorityInfoAccess = '1.3.6.1.5.5.7.1.1'
const oidInvalidityDate = '2.5.29.24'
const oidHoldInstruction = '2.5.29.23'

/** CRLReason code 8: only meaningful in delta CRLs (RFC 5280 §5.3.1); such an entry revokes nothing. */
const removeFromCrl = 8
/** Stored for entries without a reasonCode extension. */
export const noReason = 255

/** A CRL as read; no trust implied until its signature is checked against the issuer's key. */
export interface ParsedCrl {
  /** Issuer DN, RFC 4514 text (as dn.ts prints certificate names). */
  readonly issuer: string
  readonly thisUpdate: number
  /** Undefined when absent (not conforming, but seen). */
  readonly nextUpdate: number | undefined
  /** cRLNumber in hex, when present. */
  readonly crlNumber: string | undefined
  /** Why this CRL cannot be used as a complete CRL (see module doc); undefined when it can. */
  readonly unusable: string | undefined
  /** issuingDistributionPoint scope. */
  readonly onlyUserCerts: boolean
  readonly onlyCaCerts: boolean
  /** URIs of the IDP's distribution point; undefined when the IDP names none. */
  readonly scopeUrls: readonly string[] | undefined
  /** Bytes per key in `keys`: the longest serial of the CRL. */
  readonly keyWidth: number
  /** Revoked serials as `keyWidth`-byte big-endian keys, ascending, no duplicates. */
  readonly keys: Uint8Array
  /** Per key, in the same order: revocation time (ms) and CRLReason code ({@link noReason} when absent). */
  readonly revokedAt: Float64Array
  readonly reasons: Uint8Array
  /** The signed part, its algorithm and signature, for crypto.verify against the issuer's key. */
  readonly tbs: Buffer
  readonly signatureAlgorithm: { readonly oid: string; readonly params: Buffer | undefined }
  readonly signature: Buffer
}

/** DER of the entry extension OIDs, compared as bytes in the per-entry loop (decoding each OID costs more than the rest of the entry). */
const reasonCodeOid = Buffer.from([0x55, 0x1d, 0x15])
const certificateIssuerOid = Buffer.from([0x55, 0x1d, 0x1d])

function isOid(buf: Buffer, tlv: Tlv, oid: Buffer): boolean {
  return tlv.end - tlv.body === oid.length && buf.compare(oid, 0, oid.length, tlv.body, tlv.end) === 0
}

/**
 * A revocation date: the common UTCTime "YYMMDDHHMMSSZ" read digit by digit
 * (readTime's regular expression dominates parsing a large CRL); any other
 * form goes to readTime, which also validates it.
 */
function readEntryTime(buf: Buffer, tlv: Tlv): number {
  if (tlv.tag !== Tag.utcTime || tlv.end - tlv.body !== 13 || buf[tlv.end - 1] !== 0x5a) return readTime(buf, tlv)
  const d: number[] = []
  for (let i = tlv.body; i < tlv.end - 1; i += 2) {
    const hi = buf[i]! - 0x30
    const lo = buf[i + 1]! - 0x30
    if (hi < 0 || hi > 9 || lo < 0 || lo > 9) return readTime(buf, tlv)
    d.push(hi * 10 + lo)
  }
  const [yy, mo, day, h, mi, sec] = d as [number, number, number, number, number, number]
  if (mo < 1 || mo > 12 || day < 1 || day > 31 || h > 23 || mi > 59 || sec > 59) return readTime(buf, tlv)
  const ms = Date.UTC(yy < 50 ? 2000 + yy : 1900 + yy, mo - 1, day, h, mi, sec)
  return new Date(ms).getUTCDate() === day ? ms : readTime(buf, tlv) // 31 April and the like: readTime refuses them
}

/** The INTEGER's bytes with leading zero bytes removed (one byte left for zero). */
function serialBytes(buf: Buffer, tlv: Tlv): Buffer {
  let start = tlv.body
  if (tlv.end === start) throw new DerError('empty serial number')
  while (start < tlv.end - 1 && buf[start] === 0) start++
  return buf.subarray(start, tlv.end)
}

/** Sorts entries by serial into the fixed-width key table (see module doc); a repeated serial keeps its first entry. */
function serialTable(serials: readonly Buffer[], dates: readonly number[], codes: readonly number[]) {
  const keyWidth = serials.reduce((w, s) => Math.max(w, s.length), 1)
  // Fixed-width hex sorts as the numbers do, and string comparison is native.
  const hex = serials.map((s) => s.toString('hex').padStart(keyWidth * 2, '0'))
  const order = hex.map((_, i) => i).sort((a, b) => (hex[a]! < hex[b]! ? -1 : hex[a]! > hex[b]! ? 1 : a - b))
  const unique = order.filter((i, k) => k === 0 || hex[i] !== hex[order[k - 1]!])
  const keys = new Uint8Array(unique.length * keyWidth)
  const revokedAt = new Float64Array(unique.length)
  const reasons = new Uint8Array(unique.length)
  unique.forEach((i, k) => {
    keys.set(serials[i]!, k * keyWidth + keyWidth - serials[i]!.length)
    revokedAt[k] = dates[i]!
    reasons[k] = codes[i]!
  })
  return { keyWidth, keys, revokedAt, reasons }
}

function readAlgorithm(buf: Buffer, tlv: Tlv): ParsedCrl['signatureAlgorithm'] {
  const seq = DerReader.inside(buf, tlv)
  const oid = readOid(buf, seq.next(Tag.oid))
  const params = seq.hasMore() ? seq.next() : undefined
  seq.finish()
  return { oid, params: params ? buf.subarray(params.start, params.end) : undefined }
}

/** One extension: OID, criticality, and the OCTET STRING holding its value. */
function readExtension(buf: Buffer, tlv: Tlv): { oid: string; critical: boolean; value: Tlv } {
  const ext = DerReader.inside(buf, tlv)
  const oid = readOid(buf, ext.next(Tag.oid))
  const crit = ext.optional(Tag.boolean)
  const value = ext.next(Tag.octetString)
  ext.finish()
  return { oid, critical: crit ? readBoolean(buf, crit) : false, value }
}

/** URIs among GeneralNames (context tag [6] IA5String), http(s) only; other name forms are skipped. */
export function readUris(buf: Buffer, names: DerReader): string[] {
  const out: string[] = []
  while (names.hasMore()) {
    const name = names.next()
    if (name.tag !== 0x86) continue
    const uri = buf.toString('latin1', name.body, name.end)
    if (/^https?:\/\/[\x21-\x7e]+$/i.test(uri)) out.push(uri)
  }
  return out
}

interface IdpScope {
  onlyUserCerts: boolean
  onlyCaCerts: boolean
  scopeUrls: string[] | undefined
  unusable: string | undefined
}

/** issuingDistributionPoint (RFC 5280 §5.2.5); implicit tags [0]..[5]. */
function readIdp(buf: Buffer, value: Tlv): IdpScope {
  const outer = DerReader.inside(buf, value)
  const seq = DerReader.inside(buf, outer.next(Tag.sequence))
  outer.finish()
  const scope: IdpScope = { onlyUserCerts: false, onlyCaCerts: false, scopeUrls: undefined, unusable: undefined }
  const dp = seq.optional(0xa0)
  if (dp) {
    const choice = DerReader.inside(buf, dp)
    const fullName = choice.optional(0xa0)
    if (fullName) scope.scopeUrls = readUris(buf, DerReader.inside(buf, fullName))
    else scope.unusable = 'issuingDistributionPoint names its scope relative to the CRL issuer'
  }
  const flag = (tag: number) => {
    const t = seq.optional(tag)
    if (!t) return false
    if (t.end - t.body !== 1) throw new DerError('bad BOOLEAN length')
    return buf[t.body] === 0xff
  }
  scope.onlyUserCerts = flag(0x81)
  scope.onlyCaCerts = flag(0x82)
  if (seq.optional(0x83)) scope.unusable = 'the CRL covers only some revocation reasons (onlySomeReasons)'
  if (flag(0x84)) scope.unusable = 'indirect CRL (issuingDistributionPoint indirectCRL)'
  if (flag(0x85)) scope.unusable = 'the CRL covers attribute certificates only'
  seq.finish()
  return scope
}

function readReasonCode(buf: Buffer, value: Tlv): number {
  const outer = DerReader.inside(buf, value)
  const e = outer.next(0x0a) // ENUMERATED
  outer.finish()
  if (e.end - e.body !== 1) throw new DerError('bad reasonCode')
  return buf[e.body]!
}

/** Reads one CRL. Throws DerError when malformed. */
export function parseCrl(der: Buffer): ParsedCrl {
  const { tbs: tbsTlv, outerAlgorithm, signature } = readSignedEnvelope(der)

  const tbs = DerReader.inside(der, tbsTlv)
  const version = tbs.optional(Tag.integer)
  if (version && !(version.end - version.body === 1 && der[version.body] === 1)) throw new DerError('CRL version is not v2')
  checkSameAlgorithm(der, tbs.next(Tag.sequence), outerAlgorithm)
  const issuer = readName(der, tbs.next(Tag.sequence)).text
  const thisUpdate = readTime(der, tbs.next())
  const next = tbs.peekTag()
  const nextUpdate = next === Tag.utcTime || next === Tag.generalizedTime ? readTime(der, tbs.next()) : undefined

  let unusable: string | undefined
  const serials: Buffer[] = []
  const dates: number[] = []
  const codes: number[] = []
  const revoked = tbs.optional(Tag.sequence)
  if (revoked) {
    const entries = DerReader.inside(der, revoked)
    while (entries.hasMore()) {
      const entry = DerReader.inside(der, entries.next(Tag.sequence))
      const serial = serialBytes(der, entry.next(Tag.integer))
      const at = readEntryTime(der, entry.next())
      let reason = noReason
      const extensions = entry.optional(Tag.sequence)
      entry.finish()
      if (extensions) {
        const exts = DerReader.inside(der, extensions)
        while (exts.hasMore()) {
          const ext = DerReader.inside(der, exts.next(Tag.sequence))
          const oid = ext.next(Tag.oid)
          const crit = ext.optional(Tag.boolean)
          const value = ext.next(Tag.octetString)
          ext.finish()
          if (isOid(der, oid, reasonCodeOid)) reason = readReasonCode(der, value)
          else if (isOid(der, oid, certificateIssuerOid)) unusable ??= 'indirect CRL (an entry names another certificate issuer)'
          else if (crit && readBoolean(der, crit)) {
            const name = readOid(der, oid)
            if (name !== oidInvalidityDate && name !== oidHoldInstruction) unusable ??= `unknown critical entry extension ${name}`
          }
        }
      }
      if (reason === removeFromCrl) continue
      serials.push(serial)
      dates.push(at)
      codes.push(reason)
    }
  }

  let crlNumber: string | undefined
  let scope: IdpScope = { onlyUserCerts: false, onlyCaCerts: false, scopeUrls: undefined, unusable: undefined }
  const extensions = tbs.optional(0xa0)
  tbs.finish()
  if (extensions) {
    const seen = new Set<string>()
    const wrapper = DerReader.inside(der, extensions)
    const exts = DerReader.inside(der, wrapper.next(Tag.sequence))
    wrapper.finish()
    while (exts.hasMore()) {
      const ext = readExtension(der, exts.next(Tag.sequence))
      if (seen.has(ext.oid)) throw new DerError(`duplicate CRL extension ${ext.oid}`)
      seen.add(ext.oid)
      if (ext.oid === oidCrlNumber) {
        const inner = DerReader.inside(der, ext.value)
        crlNumber = serialBytes(der, inner.next(Tag.integer)).toString('hex')
      } else if (ext.oid === oidDeltaCrlIndicator) unusable ??= 'delta CRL (deltaCRLIndicator); delta CRLs are not supported'
      else if (ext.oid === oidIssuingDistributionPoint) scope = readIdp(der, ext.value)
      else if (ext.critical && ext.oid !== oidAuthorityKeyIdentifier && ext.oid !== oidFreshestCrl && ext.oid !== oidAuthorityInfoAccess) {
        unusable ??= `unknown critical CRL extension ${ext.oid}`
      }
    }
  }

  return {
    issuer,
    thisUpdate,
    nextUpdate,
    crlNumber,
    unusable: unusable ?? scope.unusable,
    onlyUserCerts: scope.onlyUserCerts,
    onlyCaCerts: scope.onlyCaCerts,
    scopeUrls: scope.scopeUrls,
    ...serialTable(serials, dates, codes),
    tbs: der.subarray(tbsTlv.start, tbsTlv.end),
    signatureAlgorithm: readAlgorithm(der, outerAlgorithm),
    signature,
  }
}

/**
 * The DER CRLs in a file or HTTP body: PEM ("X509 CRL" blocks, several
 * allowed) or one DER CRL. Throws DerError when neither.
 */
export function crlDersOf(bytes: Buffer): Buffer[] {
  const head = bytes.subarray(0, 64).toString('latin1').trimStart()
  if (!head.startsWith('-----BEGIN')) return [bytes]
  const text = bytes.toString('latin1')
  const out: Buffer[] = []
  for (const m of text.matchAll(/-----BEGIN X509 CRL-----([A-Za-z0-9+/=\s]*?)-----END X509 CRL-----/g)) {
    out.push(Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64'))
  }
  if (out.length === 0) throw new DerError('no "X509 CRL" PEM block')
  return out
}
