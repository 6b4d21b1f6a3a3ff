/**
 * The fields of an X.509 certificate that client verification and Identity
 * need, read from DER in one pass (~25 µs for a typical leaf on the test
 * machine): serial, names, validity, SANs, keyUsage, extendedKeyUsage,
 * basicConstraints, and the signed bytes with their signature.
 *
 * Strict: malformed DER, duplicate extensions, SAN strings with control or
 * non-ASCII bytes, and iPAddress SANs that are not 4 or 16 bytes all throw
 * DerError, and the caller refuses the certificate (cert_invalid). Such values
 * would otherwise reach logs, headers and matchers.
 */
import { DerError, DerReader, Tag, bytesOf, checkSameAlgorithm, readBoolean, readOid, readSignedEnvelope, readTime, type Tlv } from './der.js'
import { readName, type DistinguishedName } from './dn.js'

/** keyUsage bits, numbered as in RFC 5280 4.2.1.3. */
export const KeyUsage = {
  digitalSignature: 0,
  nonRepudiation: 1,
  keyEncipherment: 2,
  dataEncipherment: 3,
  keyAgreement: 4,
  keyCertSign: 5,
  cRLSign: 6,
} as const

/** extendedKeyUsage OIDs we act on. */
export const Eku = {
  serverAuth: '1.3.6.1.5.5.7.3.1',
  clientAuth: '1.3.6.1.5.5.7.3.2',
} as const

const oidSan = '2.5.29.17'
const oidKeyUsage = '2.5.29.15'
const oidEku = '2.5.29.37'
const oidBasicConstraints = '2.5.29.19'
const oidNameConstraints = '2.5.29.30'

/** What one DER certificate says; no trust implied. */
export interface CertFields {
  /** Lowercase hex of the serial's magnitude bytes, as `openssl x509 -serial` prints them. */
  readonly serialNumber: string
  readonly subject: DistinguishedName
  readonly issuer: DistinguishedName
  readonly notBefore: number
  readonly notAfter: number
  readonly san: {
    readonly dns: readonly string[]
    readonly uri: readonly string[]
    readonly email: readonly string[]
    readonly ip: readonly string[]
  }
  /** Set keyUsage bits (see KeyUsage); undefined when the extension is absent. */
  readonly keyUsage: ReadonlySet<number> | undefined
  /** extendedKeyUsage OIDs; undefined when the extension is absent. */
  readonly extKeyUsage: readonly string[] | undefined
  /** basicConstraints cA. */
  readonly isCa: boolean
  /** basicConstraints pathLenConstraint; undefined when absent (no limit). */
  readonly pathLen?: number | undefined
  /** The DER of the subjectPublicKeyInfo, for key-strength checks (chain-policy.ts). */
  readonly spki?: Buffer | undefined
  /**
   * nameConstraints (RFC 5280 4.2.1.10), kept as the DER of its value and
   * parsed only when a path goes through the CA (chain-policy.ts caches it).
   */
  readonly nameConstraints?: { readonly der: Buffer; readonly critical: boolean } | undefined
  /** The signed part (TBSCertificate, DER), its signature algorithm and the signature bytes. */
  readonly tbs: Buffer
  readonly signatureAlgorithm: AlgorithmIdentifier
  readonly signature: Buffer
}

/** An AlgorithmIdentifier: OID and the DER of its parameters (undefined when absent). */
export interface AlgorithmIdentifier {
  readonly oid: string
  readonly params: Buffer | undefined
}

function readAlgorithm(buf: Buffer, tlv: Tlv): AlgorithmIdentifier {
  const seq = DerReader.inside(buf, tlv)
  const oid = readOid(buf, seq.next(Tag.oid))
  const params = seq.hasMore() ? seq.next() : undefined
  seq.finish()
  return { oid, params: params ? buf.subarray(params.start, params.end) : undefined }
}

/** Printable ASCII only (0x21-0x7e): what DNS names, URIs and email addresses may hold. */
function readIa5(buf: Buffer, tlv: Tlv, what: string): string {
  for (let i = tlv.body; i < tlv.end; i++) {
    const b = buf[i]!
    if (b < 0x21 || b > 0x7e) throw new DerError(`${what} SAN holds a control, space or non-ASCII byte`)
  }
  if (tlv.end === tlv.body) throw new DerError(`empty ${what} SAN`)
  return buf.toString('latin1', tlv.body, tlv.end)
}

/** RFC 5952 text form of a 16-byte IPv6 address (lowercase, longest zero run compressed). */
export function formatIpv6(bytes: Buffer): string {
  const groups: number[] = []
  for (let i = 0; i < 16; i += 2) groups.push(bytes.readUInt16BE(i))
  let bestStart = -1
  let bestLen = 1 // a single zero group is not compressed
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++
      continue
    }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) [bestStart, bestLen] = [i, j - i]
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (bestStart < 0) return hex.join(':')
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLen).join(':')}`
}

/** The one element inside an extension's OCTET STRING; trailing bytes are refused. */
function only(buf: Buffer, tlv: Tlv, tag: number): Tlv {
  const reader = DerReader.inside(buf, tlv)
  const inner = reader.next(tag)
  reader.finish()
  return inner
}

function readSan(buf: Buffer, tlv: Tlv): CertFields['san'] {
  const dns: string[] = []
  const uri: string[] = []
  const email: string[] = []
  const ip: string[] = []
  const names = DerReader.inside(buf, only(buf, tlv, Tag.sequence))
  while (names.hasMore()) {
    const name = names.next()
    switch (name.tag) {
      case 0x81:
        email.push(readIa5(buf, name, 'email'))
        break
      case 0x82:
        dns.push(readIa5(buf, name, 'DNS'))
        break
      case 0x86:
        uri.push(readIa5(buf, name, 'URI'))
        break
      case 0x87: {
        const bytes = bytesOf(buf, name)
        if (bytes.length === 4) ip.push(Array.from(bytes).join('.'))
        else if (bytes.length === 16) ip.push(formatIpv6(bytes))
        else throw new DerError('iPAddress SAN is not 4 or 16 bytes')
        break
      }
      default: // otherName, directoryName, registeredID...: not used for identity
        break
    }
  }
  return { dns, uri, email, ip }
}

function readKeyUsage(buf: Buffer, tlv: Tlv): Set<number> {
  const bits = only(buf, tlv, Tag.bitString)
  const bytes = bytesOf(buf, bits)
  if (bytes.length < 1 || bytes[0]! > 7) throw new DerError('malformed keyUsage BIT STRING')
  const set = new Set<number>()
  for (let i = 1; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) if (bytes[i]! & (0x80 >> bit)) set.add((i - 1) * 8 + bit)
  }
  return set
}

function readEku(buf: Buffer, tlv: Tlv): string[] {
  const seq = DerReader.inside(buf, only(buf, tlv, Tag.sequence))
  const oids: string[] = []
  while (seq.hasMore()) oids.push(readOid(buf, seq.next(Tag.oid)))
  if (oids.length === 0) throw new DerError('empty extendedKeyUsage')
  return oids
}

function readBasicConstraints(buf: Buffer, tlv: Tlv): { isCa: boolean; pathLen: number | undefined } {
  const seq = DerReader.inside(buf, only(buf, tlv, Tag.sequence))
  const ca = seq.optional(Tag.boolean)
  const len = seq.optional(Tag.integer)
  seq.finish()
  let pathLen: number | undefined
  if (len) {
    const bytes = bytesOf(buf, len)
    if (bytes.length < 1 || bytes.length > 2 || bytes[0]! >= 0x80) throw new DerError('basicConstraints pathLenConstraint out of range')
    pathLen = bytes.readUIntBE(0, bytes.length)
  }
  return { isCa: ca ? readBoolean(buf, ca) : false, pathLen }
}

/** Serial magnitude: DER sign padding (a leading 0x00 before a byte >= 0x80) removed. */
function readSerial(buf: Buffer, tlv: Tlv): string {
  let start = tlv.body
  if (tlv.end - start === 0) throw new DerError('empty serial number')
  if (tlv.end - start > 1 && buf[start] === 0 && buf[start + 1]! >= 0x80) start++
  return buf.toString('hex', start, tlv.end)
}

/** Reads `der` (one certificate). Throws DerError when malformed. */
export function readCertFields(der: Buffer): CertFields {
  const { tbs: tbsTlv, outerAlgorithm, signature } = readSignedEnvelope(der)
  const tbs = DerReader.inside(der, tbsTlv)
  tbs.optional(0xa0) // version
  const serialNumber = readSerial(der, tbs.next(Tag.integer))
  checkSameAlgorithm(der, tbs.next(Tag.sequence), outerAlgorithm)
  const issuer = readName(der, tbs.next(Tag.sequence))
  const validity = DerReader.inside(der, tbs.next(Tag.sequence))
  const notBefore = readTime(der, validity.next())
  const notAfter = readTime(der, validity.next())
  validity.finish()
  const subject = readName(der, tbs.next(Tag.sequence))
  const spkiTlv = tbs.next(Tag.sequence) // subjectPublicKeyInfo
  tbs.optional(0x81) // issuerUniqueID
  tbs.optional(0x82) // subjectUniqueID
  let san: CertFields['san'] = { dns: [], uri: [], email: [], ip: [] }
  let keyUsage: Set<number> | undefined
  let extKeyUsage: string[] | undefined
  let isCa = false
  let pathLen: number | undefined
  let nameConstraints: CertFields['nameConstraints']
  const extensions = tbs.optional(0xa3)
  tbs.finish()
  if (extensions) {
    const seen = new Set<string>()
    const list = DerReader.inside(der, DerReader.inside(der, extensions).next(Tag.sequence))
    while (list.hasMore()) {
      const ext = DerReader.inside(der, list.next(Tag.sequence))
      const oid = readOid(der, ext.next(Tag.oid))
      if (seen.has(oid)) throw new DerError(`duplicate extension ${oid}`) // RFC 5280 4.2
      seen.add(oid)
      const critical = ext.optional(Tag.boolean)
      const isCritical = critical ? readBoolean(der, critical) : false
      const value = ext.next(Tag.octetString)
      ext.finish()
      if (oid === oidSan) san = readSan(der, value)
      else if (oid === oidKeyUsage) keyUsage = readKeyUsage(der, value)
      else if (oid === oidEku) extKeyUsage = readEku(der, value)
      else if (oid === oidBasicConstraints) ({ isCa, pathLen } = readBasicConstraints(der, value))
      else if (oid === oidNameConstraints) nameConstraints = { der: bytesOf(der, value), critical: isCritical }
    }
  }
  return {
    serialNumber,
    subject,
    issuer,
    notBefore,
    notAfter,
    san,
    keyUsage,
    extKeyUsage,
    isCa,
    pathLen,
    spki: der.subarray(spkiTlv.start, spkiTlv.end),
    nameConstraints,
    tbs: der.subarray(tbsTlv.start, tbsTlv.end),
    signatureAlgorithm: readAlgorithm(der, outerAlgorithm),
    signature,
  }
}
