/**
 * An annotated config using every section, shown at the top of
 * docs/configuration.md. Kept as code so a test can load it: an example that
 * no longer validates fails the build instead of misleading operators.
 */

/** A complete, valid config with comments; file references are relative to the config file. */
export const exampleConfig = `# Portcullis configuration. Durations are "250ms", "10s", "5m", "1h";
# sizes are bytes, "16KiB" or "1MiB". Unknown keys are errors.
version: 1

listeners:
  # Partners and internal services; every client must present a certificate.
  - name: edge
    host: 0.0.0.0
    port: 8443
    tls:
      certificates:
        - serverNames: [api.example.com, "*.api.example.com"]
          cert: { file: certs/api.crt }        # leaf first, then intermediates
          key: { file: certs/api.key }
          passphrase: { env: API_KEY_PASSPHRASE }
      minVersion: TLSv1.3
      clientAuth:
        mode: required                        # handshake fails without a verified certificate
        trustBundle:
          - file: ca/partners-2024.crt        # old and new CA side by side during a rotation
          - file: ca/partners-2025.crt
        perServerName:
          - serverNames: [internal.api.example.com]
            trustBundle: [{ file: ca/internal.crt }]
    limits:
      maxConnections: 20000
      headersTimeout: 10s
    trustedProxies: [10.0.0.0/8]              # keep X-Forwarded-For only from the load balancer

  # A public listener: certificates are asked for but not required; routes decide.
  - name: public
    port: 8444
    tls:
      certificates:
        - cert: { file: certs/public.crt }
          key: { file: certs/public.key }
      clientAuth:
        mode: optional
        trustBundle: [{ file: ca/partners-2025.crt }]

identities:
  # An identity matches when ANY matcher does; a matcher when ALL its fields do.
  orders-service:
    - spiffeId: spiffe://example.com/ns/prod/sa/orders
  acme:
    - subject: { O: Acme Corp }
      issuerFingerprint: "5f:1c:2a:9b:00:11:22:33:44:55:66:77:88:99:aa:bb:cc:dd:ee:ff:00:11:22:33:44:55:66:77:88:99:aa:bb"

upstreams:
  orders:
    targets:
      - url: https://orders-1.internal:8443
      - url: https://orders-2.internal:8443
        weight: 2
    balancing: least_request
    tls:
      ca: [{ file: ca/internal.crt }]
      cert: { file: certs/gateway-client.crt }  # mTLS to the upstream
      key: { file: certs/gateway-client.key }
    connectTimeout: 2s
    healthCheck:
      active: { path: /healthz, interval: 10s, timeout: 2s }
  status:
    targets: [{ url: http://127.0.0.1:9000 }]

routes:
  - name: orders-api
    listeners: [edge]
    match:
      hosts: [api.example.com]
      path: { prefix: /orders }
      methods: [GET, POST]
    access:
      identities: [orders-service, acme]      # deny by default: only these
      ipDeny: [192.0.2.0/24]
    upstream: orders
    stripPrefix: /orders                      # /orders/42 reaches the upstream as /42
    limits: { maxBodySize: 256KiB }
    timeouts: { responseHeaders: 5s }
    headers:
      identityAssertion: true                 # signed JWT in Portcullis-Identity
      set: { X-Gateway: portcullis }

  - name: status
    listeners: [public]
    match:
      path: { exact: /status }
      methods: [GET, HEAD]
    access:
      allowAnonymous: true                    # a public route, on the "optional" listener only
    upstream: status

paths:
  encodedSlash: reject

identityAssertion:
  issuer: https://gateway.example.com
  key: { file: keys/assertion.key }
  ttl: 60s

accessLog:
  path: /var/log/portcullis/access.log

shutdown:
  drainTimeout: 30s
`
