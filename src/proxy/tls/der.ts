/**
 * A minimal, strict DER reader: just enough ASN.1 to read the certificate
 * fields Node does not expose (keyUsage bits, SAN values as bytes, validity as
 * instants). Every read is bounds-checked; BER leniency (indefinite lengths,
 * non-minimal lengths, high tag numbers) is refused, so a certificate we cannot
 * read unambiguously is rejected rather than guessed at.
 *
 * Why not @peculiar/x509: parsing a leaf with it costs ~1 ms (measured), ~200x
 * this reader; Node's X509Certificate does not expose keyUsage at all.
 */

/** A certificate (or part of one) that is not valid DER. */
export class DerError extends Error {
  override name = 'DerError'
}

/** One tag-length-value element: `start` is the tag byte, `body`..`end` the contents. */
export interface Tlv {
  readonly tag: number
  readonly start: number
  readonly body: number
  readonly end: number
}

/** Common universal and context tags, as the full tag byte. */
export const Tag = {
  boolean: 0x01,
  integer: 0x02,
  bitString: 0x03,
  octetString: 0x04,
  oid: 0x06,
  utf8String: 0x0c,
  printableString: 0x13,
  teletexString: 0x14,
  ia5String: 0x16,
  utcTime: 0x17,
  generalizedTime: 0x18,
  universalString: 0x1c,
  bmpString: 0x1e,
  sequence: 0x30,
  set: 0x31,
} as const

/** Reads consecutive elements from `buf[start, end)`. */
export class DerReader {
  private pos: number

  constructor(
    readonly buf: Buffer,
    start = 0,
    private readonly end = buf.length,
  ) {
    this.pos = start
  }

  /** A reader over the contents of a constructed element. */
  static inside(buf: Buffer, tlv: Tlv): DerReader {
    return new DerReader(buf, tlv.body, tlv.end)
  }

  hasMore(): boolean {
    return this.pos < this.end
  }

  /** Tag of the next element, or undefined at the end. */
  peekTag(): number | undefined {
    return this.pos < this.end ? this.buf[this.pos] : undefined
  }

  /** The next element; with `tag`, it must have that tag. */
  next(tag?: number): Tlv {
    const start = this.pos
    if (start + 2 > this.end) throw new DerError('truncated element')
    const t = this.buf[start]!
    if ((t & 0x1f) === 0x1f) throw new DerError('high tag numbers are not used in certificates')
    if (tag !== undefined && t !== tag) throw new DerError(`expected tag 0x${tag.toString(16)}, found 0x${t.toString(16)}`)
    let len = this.buf[start + 1]!
    let body = start + 2
    if (len & 0x80) {
      const n = len & 0x7f
      if (n === 0) throw new DerError('indefinite length is not DER')
      if (n > 4) throw new DerError('length too large')
      if (body + n > this.end) throw new DerError('truncated length')
      len = 0
      for (let i = 0; i < n; i++) len = len * 256 + this.buf[body + i]!
      if (this.buf[body] === 0 || len < 0x80) throw new DerError('non-minimal length is not DER')
      body += n
    }
    const end = body + len
    if (end > this.end) throw new DerError('element overruns its container')
    this.pos = end
    return { tag: t, start, body, end }
  }

  /** The next element if it has `tag`, else undefined (for OPTIONAL and DEFAULT fields). */
  optional(tag: number): Tlv | undefined {
    return this.peekTag() === tag ? this.next(tag) : undefined
  }

  /** Throws unless every byte was read (no trailing data). */
  finish(): void {
    if (this.pos !== this.end) throw new DerError('trailing data')
  }
}

/** Contents of an element. */
export function bytesOf(buf: Buffer, tlv: Tlv): Buffer {
  return buf.subarray(tlv.body, tlv.end)
}

/** The parts of an X.509 SIGNED{} structure (certificate, CRL): what was signed, the outer algorithm, the signature. */
export interface SignedEnvelope {
  readonly tbs: Tlv
  readonly outerAlgorithm: Tlv
  /** The signature's bytes (the BIT STRING without its unused-bits octet). */
  readonly signature: Buffer
}

/** Reads `der` as exactly one SIGNED{} SEQUENCE. Throws DerError when malformed. */
export function readSignedEnvelope(der: Buffer): SignedEnvelope {
  const top = new DerReader(der)
  const whole = top.next(Tag.sequence)
  top.finish()
  const parts = DerReader.inside(der, whole)
  const tbs = parts.next(Tag.sequence)
  const outerAlgorithm = parts.next(Tag.sequence)
  const signatureBits = bytesOf(der, parts.next(Tag.bitString))
  parts.finish()
  if (signatureBits.length < 1 || signatureBits[0] !== 0) throw new DerError('signature BIT STRING has unused bits')
  return { tbs, outerAlgorithm, signature: signatureBits.subarray(1) }
}

/**
 * RFC 5280 4.1.1.2 / 5.1.2.2: the algorithm inside the signed part must equal
 * the outer one, or a verifier could be told a different one.
 */
export function checkSameAlgorithm(der: Buffer, inner: Tlv, outer: Tlv): void {
  if (!der.subarray(inner.start, inner.end).equals(der.subarray(outer.start, outer.end))) {
    throw new DerError('signature algorithm differs inside and outside the signed part')
  }
}

/** Dotted-decimal form of an OBJECT IDENTIFIER element. */
export function readOid(buf: Buffer, tlv: Tlv): string {
  if (tlv.end === tlv.body) throw new DerError('empty OID')
  const arcs: number[] = []
  let value = 0
  for (let i = tlv.body; i < tlv.end; i++) {
    const b = buf[i]!
    if (value === 0 && b === 0x80) throw new DerError('non-minimal OID arc')
    value = value * 128 + (b & 0x7f)
    if (value > Number.MAX_SAFE_INTEGER / 128) throw new DerError('OID arc too large')
    if ((b & 0x80) === 0) {
      if (arcs.length === 0) {
        const first = value < 80 ? Math.floor(value / 40) : 2
        arcs.push(first, value - first * 40)
      } else arcs.push(value)
      value = 0
    } else if (i === tlv.end - 1) throw new DerError('truncated OID')
  }
  return arcs.join('.')
}

/** A BOOLEAN element (DER: 0x00 or 0xff). */
export function readBoolean(buf: Buffer, tlv: Tlv): boolean {
  if (tlv.end - tlv.body !== 1) throw new DerError('bad BOOLEAN length')
  const b = buf[tlv.body]
  if (b === 0x00) return false
  if (b === 0xff) return true
  throw new DerError('BOOLEAN is not 0x00 or 0xff')
}

/** A UTCTime or GeneralizedTime element (the forms RFC 5280 allows) as ms since epoch. */
export function readTime(buf: Buffer, tlv: Tlv): number {
  const text = buf.toString('latin1', tlv.body, tlv.end)
  let m: RegExpExecArray | null
  let year: number
  if (tlv.tag === Tag.utcTime && (m = /^(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    const yy = Number(m[1])
    year = yy < 50 ? 2000 + yy : 1900 + yy // RFC 5280 4.1.2.5.1
  } else if (tlv.tag === Tag.generalizedTime && (m = /^(\d{4})(\d\d)(\d\d)(\d\d)(\d\d)(\d\d)Z$/.exec(text))) {
    year = Number(m[1])
  } else throw new DerError('time is not UTCTime or GeneralizedTime in RFC 5280 form')
  const [mo, d, h, mi, s] = [m[2], m[3], m[4], m[5], m[6]].map(Number) as [number, number, number, number, number]
  const date = new Date(0) // setUTCFullYear, unlike Date.UTC, does not map years 0-99 to 1900-1999
  date.setUTCFullYear(year, mo - 1, d)
  date.setUTCHours(h, mi, s, 0)
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new DerError('time out of range')
  }
  return date.getTime()
}
