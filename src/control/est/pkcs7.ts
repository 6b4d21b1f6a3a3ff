/**
 * The certs-only PKCS#7 (CMS) message EST answers with: `/cacerts` and the
 * enroll endpoints return certificates as a degenerate SignedData, the
 * "Simple PKI Response" of RFC 5272 §4.1 (RFC 7030 §4.1.3, §4.2.3).
 *
 * Decisions:
 * - Built with @peculiar/asn1-cms, not by hand. @peculiar/x509's
 *   `X509Certificates.export()` builds the same structure but writes an empty
 *   eContent OCTET STRING; RFC 5272 §4.1 wants eContent omitted, which is what
 *   `openssl crl2pkcs7 -nocrl` writes too, so strict EST clients get exactly
 *   the expected shape.
 * - The body is base64 in 64-character lines (RFC 7030 §4.1.3 "base64"
 *   transfer encoding): `openssl base64 -d` reads it as it is.
 */
import { ContentInfo, CertificateChoices, CertificateSet, EncapsulatedContentInfo, SignedData, id_data, id_signedData } from '@peculiar/asn1-cms'
import { AsnConvert } from '@peculiar/asn1-schema'
import { Certificate } from '@peculiar/asn1-x509'

/** DER of a ContentInfo holding a SignedData with `certificates` (DER, in the given order), no signers, no content. */
export function certsOnlyPkcs7(certificates: readonly Uint8Array[]): Buffer {
  const signedData = new SignedData({
    // CMSVersion 1: only plain X.509 certificates, eContentType id-data (RFC 5652 §5.1).
    version: 1,
    encapContentInfo: new EncapsulatedContentInfo({ eContentType: id_data }),
    certificates: new CertificateSet(certificates.map((der) => new CertificateChoices({ certificate: AsnConvert.parse(der, Certificate) }))),
  })
  const contentInfo = new ContentInfo({ contentType: id_signedData, content: AsnConvert.serialize(signedData) })
  return Buffer.from(AsnConvert.serialize(contentInfo))
}

/** Base64 in lines of 64 characters, each ended by LF: the EST body encoding. */
export function base64Lines(der: Uint8Array): string {
  const text = Buffer.from(der).toString('base64')
  let out = ''
  for (let i = 0; i < text.length; i += 64) out += `${text.slice(i, i + 64)}\n`
  return out
}
