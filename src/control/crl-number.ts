/**
 * The CRL number (RFC 5280 §5.2.3): strictly increasing for the life of the
 * issuing CA, across restarts and across every gateway that shares the
 * inventory's storage. It is kept in the key-value store and advanced with
 * compare-and-set, so two processes publishing at once never reuse a number
 * (a relying party seeing two different CRLs with one number may keep the
 * wrong one). A number is consumed even if the CRL built with it is never
 * served: gaps are allowed, repeats are not.
 */
import type { KeyValueStore } from '../storage/types.js'

/** Where the counter lives in the key-value store. */
export const crlNumberKey = 'pki/crl-number'

const MAX_ATTEMPTS = 20

/**
 * Reserves and returns the next CRL number (1 for the first CRL). Throws when
 * the stored value is not a non-negative decimal integer (someone else wrote
 * the key: refusing is safer than restarting at 1) or after repeated
 * conflicts.
 */
export async function nextCrlNumber(kv: KeyValueStore, key = crlNumberKey): Promise<bigint> {
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const current = await kv.get(key)
    let next = 1n
    if (current) {
      const text = current.value.toString('utf8')
      if (!/^(0|[1-9][0-9]{0,47})$/.test(text)) throw new Error(`${key} holds "${text.slice(0, 40)}", not a CRL number`)
      next = BigInt(text) + 1n
    }
    const put = await kv.put(key, Buffer.from(next.toString(), 'utf8'), { ifVersion: current ? current.version : 'absent' })
    if ('version' in put) return next
  }
  throw new Error(`${key}: too many concurrent updates`)
}
