/**
 * Certificate serial numbers for the CA.
 */
import { randomBytes } from 'node:crypto'

/**
 * A random positive 128-bit serial as lowercase hex (32 digits).
 *
 * Why random: RFC 5280 4.1.2.2 only asks for uniqueness per issuer, but the
 * CA/Browser Forum baseline wants at least 64 bits of CSPRNG output so a
 * requester cannot predict the to-be-signed bytes (the chosen-prefix attack
 * on MD5 certificates). 126 random bits also make a collision across the
 * CA's whole life negligible, so no serial counter has to be stored or locked.
 *
 * Why the two top bits: the first is cleared so the DER INTEGER is positive
 * without a sign octet; the second is set so the value always takes exactly
 * 16 octets. Without it, 1 in 256 serials would start with a zero octet,
 * which DER must strip, and the serial read back from the certificate would
 * no longer equal the one we chose (the inventory keys on it).
 */
export function randomSerial(): string {
  const bytes = randomBytes(16)
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x40
  return bytes.toString('hex')
}
