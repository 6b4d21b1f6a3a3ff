/**
 * The one cipher policy, for TLS we terminate (listeners) and TLS we
 * originate (upstreams). TLS 1.2: ECDHE key exchange with AEAD ciphers only —
 * no RSA key exchange (no forward secrecy), no CBC (padding oracles), no SHA-1
 * MACs. TLS 1.3 suites are all AEAD.
 */
export const TLS13_CIPHERS = ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384', 'TLS_CHACHA20_POLY1305_SHA256'] as const

export const TLS12_CIPHERS = [
  'ECDHE-ECDSA-AES128-GCM-SHA256',
  'ECDHE-RSA-AES128-GCM-SHA256',
  'ECDHE-ECDSA-AES256-GCM-SHA384',
  'ECDHE-RSA-AES256-GCM-SHA384',
  'ECDHE-ECDSA-CHACHA20-POLY1305',
  'ECDHE-RSA-CHACHA20-POLY1305',
] as const

/** OpenSSL cipher-list form of both, TLS 1.3 first. */
export const defaultCipherList = [...TLS13_CIPHERS, ...TLS12_CIPHERS].join(':')
