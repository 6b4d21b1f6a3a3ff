/**
 * Strict PEM splitting for compile-time checks. Text between blocks is
 * ignored (openssl writes "Bag Attributes" and comments there), but a BEGIN
 * without its matching END, or a body that is not base64, is an error: Node
 * would silently skip such a block and the operator would never know a CA or
 * chain certificate was missing.
 */

/** One PEM block: its label ("CERTIFICATE", "PRIVATE KEY"...), DER and text. */
export interface PemBlock {
  readonly label: string
  readonly der: Buffer
  /** The block as text, BEGIN and END lines included. */
  readonly text: string
}

/** A PEM text that cannot be split unambiguously. */
export class PemError extends Error {
  override name = 'PemError'
}

const beginLine = /-----BEGIN ([A-Z0-9 ]+)-----/g

/** The blocks of `text`, in order. Throws PemError when malformed. */
export function splitPem(text: string): PemBlock[] {
  const blocks: PemBlock[] = []
  beginLine.lastIndex = 0
  for (let m = beginLine.exec(text); m; m = beginLine.exec(text)) {
    const label = m[1]!
    const endMarker = `-----END ${label}-----`
    const end = text.indexOf(endMarker, beginLine.lastIndex)
    const nextBegin = text.indexOf('-----BEGIN ', beginLine.lastIndex)
    if (end < 0 || (nextBegin >= 0 && nextBegin < end)) throw new PemError(`block ${blocks.length + 1} (${label}) has no matching END line`)
    const lines = text.slice(beginLine.lastIndex, end).split(/\r?\n/).map((l) => l.trim())
    // RFC 7468 allows headers only in legacy encrypted keys ("Proc-Type:"); keep them out of the base64.
    const body = lines.filter((l) => l !== '' && !/^[A-Za-z-]+:/.test(l)).join('')
    if (body === '' || !/^[A-Za-z0-9+/]+={0,2}$/.test(body) || body.length % 4 !== 0) {
      throw new PemError(`block ${blocks.length + 1} (${label}) is not valid base64`)
    }
    blocks.push({ label, der: Buffer.from(body, 'base64'), text: text.slice(m.index, end + endMarker.length) })
    beginLine.lastIndex = end + endMarker.length
  }
  return blocks
}
