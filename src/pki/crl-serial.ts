/**
 * One spelling of certificate serial numbers across CRL entries, OCSP status
 * lookups and the inventory: lowercase hex of the unsigned magnitude, no
 * leading zero bytes, even length (e.g. "0a1b", never "A1B" or "000a1b").
 * openssl prints the same digits in uppercase (`x509 -serial`), so a value
 * pasted from openssl normalises to the stored key.
 */

/** RFC 5280 §4.1.2.2: serials are positive and at most 20 octets. */
const MAX_SERIAL_OCTETS = 20

/**
 * Normalises a hex serial as typed by an operator or printed by openssl
 * (optional "0x", optional ':' separators, any case). Returns undefined for
 * anything that is not a positive integer of at most 20 octets, so a bad
 * serial is refused instead of silently matching nothing.
 */
export function normalizeSerialHex(input: string): string | undefined {
  let hex = input.trim().replace(/:/g, '').toLowerCase()
  if (hex.startsWith('0x')) hex = hex.slice(2)
  if (!/^[0-9a-f]+$/.test(hex)) return undefined
  hex = hex.replace(/^0+/, '')
  if (hex.length === 0) return undefined // zero is not a valid serial
  if (hex.length % 2 === 1) hex = `0${hex}`
  return hex.length / 2 <= MAX_SERIAL_OCTETS ? hex : undefined
}

/**
 * The normalised serial of a DER INTEGER's content octets (as found in an OCSP
 * CertID). Returns undefined for negative or zero values and for more than 20
 * magnitude octets: no certificate of ours can have such a serial, and the
 * responder answers `unknown` for it without consulting storage.
 */
export function serialHexFromInteger(content: Uint8Array): string | undefined {
  if (content.length === 0 || (content[0]! & 0x80) !== 0) return undefined
  return normalizeSerialHex(Buffer.from(content).toString('hex'))
}
