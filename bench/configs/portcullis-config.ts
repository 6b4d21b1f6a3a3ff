/**
 * The Portcullis config the bench runs: two listeners (ECDSA and RSA server
 * certificates, TLS 1.2 allowed so the TLS 1.2 handshake scenario has
 * something to measure) and the routes of the comparison:
 *
 * - `full` (`/`): the whole per-route pipeline the issue's target names —
 *   a named identity (SPIFFE id), an IP allow list, header hygiene with the
 *   RFC 9440 Client-Cert header, and the access log (to a file, as nginx
 *   and HAProxy log too).
 * - `bare` (`/bare`): any verified client certificate, no IP filter, no
 *   Client-Cert header. The difference between the two is what the
 *   pipeline costs.
 * - the streaming routes, with a body limit above the 100 MB upload.
 *
 * Limits are raised only where a scenario needs it (thousands of idle
 * keep-alive connections held for a minute); everything else keeps the
 * defaults an operator gets. Values from outside (paths) are written as JSON strings,
 * which YAML reads as double-quoted scalars.
 */
import { join } from 'node:path'
import { paths, type ProxyPorts, type Topology } from '../topology.js'

/** Renders the YAML for one Portcullis instance (single or cluster) on `ports`. */
export function renderPortcullisConfig(topo: Topology, ports: ProxyPorts, name: string): string {
  const q = (s: string) => JSON.stringify(s)
  const listener = (keyType: 'ec' | 'rsa') => {
    const pki = topo.pki[keyType]
    return `  - name: ${keyType}
    host: "127.0.0.1"
    port: ${ports[keyType]}
    tls:
      certificates:
        - cert: { file: ${q(pki.serverCert)} }
          key: { file: ${q(pki.serverKey)} }
      minVersion: TLSv1.2
      clientAuth:
        mode: required
        trustBundle:
          - file: ${q(pki.caCert)}
    limits:
      maxConnections: ${topo.idleConnections + 1000}
      keepAliveTimeout: 60s
`
  }
  return `version: 1
listeners:
${listener('ec')}${listener('rsa')}
identities:
  bench-client:
    - spiffeId: ${q(topo.pki.ec.clientSpiffeId)}
    - spiffeId: ${q(topo.pki.rsa.clientSpiffeId)}

upstreams:
  small:
    targets:
      - url: "http://127.0.0.1:${topo.upstreamPort}"
  sink:
    targets:
      - url: "http://127.0.0.1:${topo.sinkPort}"

routes:
  - name: full
    match:
      path: { prefix: ${q(paths.full)} }
    access:
      identities: [bench-client]
      ipAllow: ["127.0.0.0/8"]
    upstream: small
  - name: bare
    match:
      path: { prefix: ${q(paths.bare)} }
    access:
      allowAnyClientCert: true
    headers:
      clientCert: false
    upstream: small
  - name: stream-down
    match:
      path: { exact: ${q(paths.download)} }
      methods: [GET]
    access:
      identities: [bench-client]
    upstream: small
  - name: stream-up
    match:
      path: { exact: ${q(paths.upload)} }
      methods: [PUT]
    access:
      identities: [bench-client]
    limits:
      maxBodySize: 256MiB
    upstream: sink

accessLog:
  path: ${q(join(topo.dir, `${name}-access.log`))}
`
}
