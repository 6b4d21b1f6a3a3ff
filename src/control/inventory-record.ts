/**
 * Converts what the CA core returns for an issued certificate (`IssuedRecord`,
 * SANs as typed values) into what the inventory stores (`NewCertificateRecord`,
 * SANs in openssl's `TYPE:value` spelling, so `ca list` prints them as
 * `openssl x509 -text` would and storage never interprets them).
 */
import type { IssuedRecord } from '../pki/ca-leaf.js'
import type { San } from '../pki/ca-names.js'
import type { NewCertificateRecord } from '../storage/types.js'

const sanPrefix: Record<San['type'], string> = { dns: 'DNS', ip: 'IP', uri: 'URI', email: 'email' }

/** The inventory row for an issued certificate; the partner is kept only when there is one. */
export function toInventoryRecord(record: IssuedRecord): NewCertificateRecord {
  return {
    serial: record.serial,
    subject: record.subject,
    sans: record.sans.map((s) => `${sanPrefix[s.type]}:${s.value}`),
    profile: record.profile,
    ...(record.partner === undefined ? {} : { partner: record.partner }),
    notBefore: record.notBefore,
    notAfter: record.notAfter,
    fingerprint256: record.fingerprint256,
    pem: record.pem,
  }
}
