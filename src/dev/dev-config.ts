/**
 * The config `portcullis start` writes when it is given none: one loopback
 * listener with the dev certificates, one named identity, the example
 * upstream, and two routes that show a public and an mTLS-only path side by
 * side. It is meant to be copied as a starting point, so every section carries
 * a comment saying what it does and why it is set this way.
 *
 * Rendered as text, not with a YAML serializer, so the comments sit where a
 * reader needs them. Every value that comes from outside (paths, URLs,
 * fingerprints) is written as a JSON string, which is a valid YAML
 * double-quoted scalar: a path with ": " or "#" in it cannot change the
 * document's structure.
 */
import type { DevPki } from './dev-pki.js'

/** Listener port the dev config uses when the CLI is not told otherwise. */
export const defaultDevPort = 8443

/** Renders the dev config. Paths are absolute, so a copy works from any folder. */
export function renderDevConfig(opts: { pki: DevPki; port: number; upstreamUrl: string }): string {
  const { pki, port, upstreamUrl } = opts
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new RangeError(`invalid port ${port}`)
  const q = (s: string) => JSON.stringify(s)
  return `# Portcullis development configuration.
#
# Written by \`portcullis start\` when no config is given, and rewritten on every
# such start (the example upstream gets a new port each time). To build on it,
# copy it elsewhere, edit, and run \`portcullis start --config <file>\`.
# Every field and its default: docs/configuration.md.
version: 1

# Where Portcullis accepts connections. Loopback only: this demo is not
# reachable from other machines. To serve them, bind "0.0.0.0" or "::" and use
# certificates for the names they will connect to.
listeners:
  - name: main
    host: "127.0.0.1"
    port: ${port}
    tls:
      # The certificate this listener presents, made by the dev CA for
      # localhost, 127.0.0.1 and ::1. Paths may also be relative to this file,
      # or PEM can come inline ({ pem: ... }) or from a variable ({ env: VAR }).
      certificates:
        - cert: { file: ${q(pki.server.certPath)} }
          key: { file: ${q(pki.server.keyPath)} }
      clientAuth:
        # "optional" asks every client for a certificate but lets callers
        # without one in as anonymous; only routes with allowAnonymous admit
        # them. A certificate that fails verification is refused in every mode.
        # Use "required" when no route is public.
        mode: optional
        # The CAs client certificates must chain to: here only the dev CA.
        trustBundle:
          - file: ${q(pki.ca.certPath)}
        # Answer a refused certificate with an HTTP problem+json naming the
        # reason, instead of closing the connection. Friendlier while you set
        # things up; turn it off to give scanners nothing to read.
        rejectWithProblem: true

# Named callers, matched on their verified certificate. A caller is an
# identity when ANY of its matchers matches; a matcher matches when ALL of its
# fields do. Pinning the issuing CA next to the SPIFFE id means that another
# CA, added to trustBundle later, cannot issue a certificate that passes for
# dev-client.
identities:
  dev-client:
    - spiffeId: ${q(pki.clientSpiffeId)}
      issuerFingerprint: ${q(pki.ca.fingerprint256)}

# The services behind the gateway. "example" is the small echo service that
# \`portcullis start\` runs beside the gateway: it answers with what it received,
# including the caller's certificate (sent as the RFC 9440 Client-Cert header).
upstreams:
  example:
    targets:
      - url: ${q(upstreamUrl)}

# What is reachable, and by whom. A request no route matches is answered 404,
# and a route admits no one it does not name: deny by default. The most
# specific match wins, so /healthz goes to public-health and everything else
# to example-api.
routes:
  # Public: no client certificate needed (allowAnonymous), GET only.
  - name: public-health
    match:
      path: { exact: "/healthz" }
      methods: [GET]
    access:
      allowAnonymous: true
    upstream: example

  # mTLS only: the caller must present a certificate that is dev-client.
  # Without one the gateway refuses the request (401, reason
  # client_cert_required) and the upstream never sees it.
  - name: example-api
    match:
      path: { prefix: "/" }
    access:
      identities: [dev-client]
    upstream: example
`
}
