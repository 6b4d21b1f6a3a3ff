/**
 * Certificate sightings in cluster mode. The listeners that see client
 * certificates run in the workers, while the CA service that writes sightings
 * to the inventory runs once, in the primary. So each worker collects its own
 * (watching the issuers the primary's collector watches, sent in `init`) and
 * hands them to the primary every SIGHTINGS_FORWARD_MS; the primary merges
 * them into this collector, which the CA service drains as in one process.
 *
 * The CA service registers its issuer when it starts, which is before the
 * workers are forked, so `init` always carries it.
 */
import { CertificateSightings } from '../proxy/certificate-sightings.js'

/** How often a worker hands its sightings to the primary. */
export const SIGHTINGS_FORWARD_MS = 1000

/** The primary's collector: remembers which issuers it watches, so workers can watch them too. */
export class PrimarySightings extends CertificateSightings {
  private readonly watched = new Set<string>()

  override watch(issuerFingerprint256: string): void {
    super.watch(issuerFingerprint256)
    this.watched.add(issuerFingerprint256.toLowerCase())
  }

  /** The issuers watched so far (SHA-256 of their DER, lowercase hex). */
  watchedIssuers(): string[] {
    return [...this.watched]
  }
}
