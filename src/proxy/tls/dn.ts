/**
 * X.501 Names (subject, issuer) read from DER into the two forms an Identity
 * carries: an RFC 4514 string for logs and display, and attributes by short
 * name for matchers. Read from DER rather than from Node's strings so the
 * order is known (Node's subject object loses it) and no string is re-parsed.
 */
import { DerError, DerReader, Tag, readOid, type Tlv } from './der.js'

/** A parsed Name. */
export interface DistinguishedName {
  /**
   * RFC 4514: last RDN first, "," between RDNs, "+" inside one, special
   * characters backslash-escaped; what `openssl x509 -nameopt RFC2253` prints
   * for ASCII names. Control characters are escaped as \XX so the text is safe in logs.
   */
  readonly text: string
  /** Values by attribute short name (as OpenSSL names them), in certificate order. */
  readonly fields: Readonly<Record<string, readonly string[]>>
}

/** OpenSSL short names for the attributes seen in practice; others print as dotted OIDs (RFC 4514 2.3). */
const shortNames: Readonly<Record<string, string>> = {
  '2.5.4.3': 'CN',
  '2.5.4.4': 'SN',
  '2.5.4.5': 'serialNumber',
  '2.5.4.6': 'C',
  '2.5.4.7': 'L',
  '2.5.4.8': 'ST',
  '2.5.4.9': 'street',
  '2.5.4.10': 'O',
  '2.5.4.11': 'OU',
  '2.5.4.12': 'title',
  '2.5.4.13': 'description',
  '2.5.4.15': 'businessCategory',
  '2.5.4.17': 'postalCode',
  '2.5.4.42': 'GN',
  '2.5.4.43': 'initials',
  '2.5.4.44': 'generationQualifier',
  '2.5.4.45': 'x500UniqueIdentifier',
  '2.5.4.46': 'dnQualifier',
  '2.5.4.65': 'pseudonym',
  '2.5.4.97': 'organizationIdentifier',
  '1.2.840.113549.1.9.1': 'emailAddress',
  '0.9.2342.19200300.100.1.1': 'UID',
  '0.9.2342.19200300.100.1.25': 'DC',
  '1.3.6.1.4.1.311.60.2.1.3': 'jurisdictionC',
}

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Decodes the directory string types; undefined for any other type (printed as #hex). */
function decodeString(buf: Buffer, tlv: Tlv): string | undefined {
  const bytes = buf.subarray(tlv.body, tlv.end)
  switch (tlv.tag) {
    case Tag.utf8String:
      return utf8.decode(bytes)
    case Tag.printableString:
    case Tag.ia5String:
    case 0x12: // NumericString
    case 0x1a: // VisibleString
      if (bytes.some((b) => b > 0x7f)) throw new DerError('non-ASCII byte in an ASCII string type')
      return bytes.toString('latin1')
    case Tag.teletexString: // in practice Latin-1, as OpenSSL treats it
      return bytes.toString('latin1')
    case Tag.bmpString: {
      if (bytes.length % 2 !== 0) throw new DerError('odd BMPString length')
      const swapped = Buffer.from(bytes).swap16()
      return swapped.toString('utf16le')
    }
    case Tag.universalString: {
      if (bytes.length % 4 !== 0) throw new DerError('bad UniversalString length')
      let out = ''
      for (let i = 0; i < bytes.length; i += 4) out += String.fromCodePoint(bytes.readUInt32BE(i))
      return out
    }
    default:
      return undefined
  }
}

/** RFC 4514 2.4 escaping, plus \XX for control characters. */
export function escapeDnValue(value: string): string {
  let out = ''
  for (let i = 0; i < value.length; i++) {
    const c = value[i]!
    const code = c.charCodeAt(0)
    if (code < 0x20 || code === 0x7f) out += '\\' + code.toString(16).toUpperCase().padStart(2, '0')
    else if (',+"\\<>;'.includes(c)) out += '\\' + c
    else if ((i === 0 && (c === ' ' || c === '#')) || (i === value.length - 1 && c === ' ')) out += '\\' + c
    else out += c
  }
  return out
}

/** Parses the Name element `tlv` of `buf`. Throws DerError when malformed. */
export function readName(buf: Buffer, tlv: Tlv): DistinguishedName {
  if (tlv.tag !== Tag.sequence) throw new DerError('Name is not a SEQUENCE')
  const rdns: string[] = []
  const fields: Record<string, string[]> = Object.create(null)
  const names = DerReader.inside(buf, tlv)
  while (names.hasMore()) {
    const rdn = DerReader.inside(buf, names.next(Tag.set))
    const avas: string[] = []
    while (rdn.hasMore()) {
      const ava = DerReader.inside(buf, rdn.next(Tag.sequence))
      const oid = readOid(buf, ava.next(Tag.oid))
      const valueTlv = ava.next()
      ava.finish()
      const key = shortNames[oid] ?? oid
      const value = decodeString(buf, valueTlv)
      if (value === undefined) {
        avas.push(`${key}=#${buf.toString('hex', valueTlv.start, valueTlv.end)}`)
        continue
      }
      avas.push(`${key}=${escapeDnValue(value)}`)
      ;(fields[key] ??= []).push(value)
    }
    if (avas.length === 0) throw new DerError('empty RDN')
    rdns.push(avas.join('+'))
  }
  for (const values of Object.values(fields)) Object.freeze(values)
  return { text: rdns.reverse().join(','), fields: Object.freeze(fields) }
}
