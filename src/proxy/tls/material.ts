/**
 * Loads and checks a listener's PEM material at compile time, so a bad file
 * is a config issue at its path, not a handshake failure at 3 a.m.: chains
 * that do not parse or are out of order, keys that do not match or need a
 * passphrase, server names the certificate does not cover, trust bundles
 * holding private keys, non-CA or non-root certificates. Messages name the
 * file or variable, never its content.
 */
import { createPrivateKey, type KeyObject, type X509Certificate } from 'node:crypto'
import type { ConfigIssue } from '../../config/issues.js'
import type { ListenerConfig } from '../../config/schema/listeners.js'
import type { PemSource } from '../../config/schema/common.js'
import { SourceError, readPem, readSecret, type SourceContext } from '../../config/secrets.js'
import { PemError, splitPem, type PemBlock } from './pem.js'
import { parseCertificate, TrustGroup, type ParsedCert } from './trust.js'

type Path = readonly (string | number)[]
type ServerCertificateConfig = ListenerConfig['tls']['certificates'][number]

/** A server certificate ready for `tls.createSecureContext`. */
export interface ServerCertMaterial {
  readonly serverNames: readonly string[]
  /** Leaf first, then the intermediates, as PEM. */
  readonly certPem: string
  readonly keyPem: string
  readonly passphrase: string | undefined
  readonly leaf: X509Certificate
  /** The certificate after the leaf in the file, which issued it (the chain order is checked); for OCSP stapling. */
  readonly issuer: X509Certificate | undefined
}

const keyLabels = new Set(['PRIVATE KEY', 'RSA PRIVATE KEY', 'EC PRIVATE KEY', 'ENCRYPTED PRIVATE KEY'])

/** Weak keys refused for server and anchor certificates (OpenSSL security level 2). */
function keyWeakness(key: KeyObject): string | undefined {
  const bits = key.asymmetricKeyDetails?.modulusLength
  if ((key.asymmetricKeyType === 'rsa' || key.asymmetricKeyType === 'rsa-pss') && bits !== undefined && bits < 2048) {
    return `RSA key of ${bits} bits; at least 2048 required`
  }
  return undefined
}

function sourceName(source: PemSource): string {
  return 'file' in source ? source.file : 'env' in source ? `$${source.env}` : 'inline pem'
}

/** Reads and splits a PEM source, reporting problems at `path`. */
function readBlocks(source: PemSource, ctx: SourceContext, path: Path, issues: ConfigIssue[]): PemBlock[] | undefined {
  try {
    return splitPem(readPem(source, ctx))
  } catch (err) {
    if (err instanceof SourceError || err instanceof PemError) {
      issues.push({ path, message: `${sourceName(source)}: ${err.message}` })
      return undefined
    }
    throw err
  }
}

function loadKey(cfg: ServerCertificateConfig, ctx: SourceContext, path: Path, issues: ConfigIssue[]) {
  const blocks = readBlocks(cfg.key, ctx, [...path, 'key'], issues)
  if (!blocks) return undefined
  if (blocks.length !== 1 || !keyLabels.has(blocks[0]!.label)) {
    issues.push({ path: [...path, 'key'], message: `${sourceName(cfg.key)}: expected exactly one private key block, found ${blocks.map((b) => b.label).join(', ') || 'none'}` })
    return undefined
  }
  let passphrase: string | undefined
  if (cfg.passphrase) {
    try {
      passphrase = readSecret(cfg.passphrase, ctx)
    } catch (err) {
      if (!(err instanceof SourceError)) throw err
      issues.push({ path: [...path, 'passphrase'], message: err.message })
      return undefined
    }
  }
  const keyPem = blocks[0]!.text
  // Checked before parsing: OpenSSL 3 reports a missing passphrase as a generic "interrupted or cancelled".
  if (passphrase === undefined && (blocks[0]!.label === 'ENCRYPTED PRIVATE KEY' || /Proc-Type:\s*4,ENCRYPTED/.test(keyPem))) {
    issues.push({ path: [...path, 'key'], message: `${sourceName(cfg.key)}: the key is encrypted; set passphrase` })
    return undefined
  }
  try {
    const key = createPrivateKey({ key: keyPem, format: 'pem', ...(passphrase !== undefined ? { passphrase } : {}) })
    return { key, keyPem, passphrase }
  } catch (err) {
    const code = (err as { code?: string }).code ?? 'unknown error'
    const message = /BAD_DECRYPT/.test(code) ? 'wrong passphrase for the key' : `${sourceName(cfg.key)}: the key does not parse (${code})`
    issues.push({ path: [...path, passphrase !== undefined && /BAD_DECRYPT/.test(code) ? 'passphrase' : 'key'], message })
    return undefined
  }
}

/** True when `cert` covers `pattern` (an exact name via its DNS SANs, a "*.x" pattern only by the same wildcard SAN). */
function covers(cert: X509Certificate, dnsSans: readonly string[], pattern: string): boolean {
  if (pattern.startsWith('*.')) return dnsSans.some((s) => s.toLowerCase() === pattern)
  return cert.checkHost(pattern, { subject: 'never' }) !== undefined
}

/** Loads `certificates[index]`; undefined (with issues) when unusable. */
export function loadServerCertificate(
  cfg: ServerCertificateConfig,
  ctx: SourceContext,
  path: Path,
  issues: ConfigIssue[],
): ServerCertMaterial | undefined {
  const before = issues.length
  const blocks = readBlocks(cfg.cert, ctx, [...path, 'cert'], issues)
  const key = loadKey(cfg, ctx, path, issues)
  if (!blocks) return undefined
  const certs: ParsedCert[] = []
  blocks.forEach((block, i) => {
    if (block.label !== 'CERTIFICATE') {
      issues.push({ path: [...path, 'cert'], message: `${sourceName(cfg.cert)}: block ${i + 1} is ${block.label}; expected CERTIFICATE` })
      return
    }
    try {
      certs.push(parseCertificate(block.der))
    } catch {
      issues.push({ path: [...path, 'cert'], message: `${sourceName(cfg.cert)}: certificate ${i + 1} does not parse` })
    }
  })
  if (issues.length > before) return undefined
  const leaf = certs[0]
  if (!leaf) {
    issues.push({ path: [...path, 'cert'], message: `${sourceName(cfg.cert)}: no certificate` })
    return undefined
  }
  for (let i = 1; i < certs.length; i++) {
    if (!certs[i - 1]!.x509.checkIssued(certs[i]!.x509)) {
      issues.push({ path: [...path, 'cert'], message: `${sourceName(cfg.cert)}: certificate ${i + 1} did not issue certificate ${i}; the chain must be leaf first, each followed by its issuer` })
    }
  }
  const weak = keyWeakness(leaf.publicKey)
  if (weak) issues.push({ path: [...path, 'cert'], message: `${sourceName(cfg.cert)}: ${weak}` })
  cfg.serverNames.forEach((name, i) => {
    if (!covers(leaf.x509, leaf.fields.san.dns, name)) {
      issues.push({ path: [...path, 'serverNames', i], message: `the certificate does not cover ${name} (DNS SANs: ${leaf.fields.san.dns.join(', ') || 'none'})` })
    }
  })
  if (key && !leaf.x509.checkPrivateKey(key.key)) {
    issues.push({ path: [...path, 'key'], message: `${sourceName(cfg.key)}: the key does not match the certificate` })
  }
  if (!key || issues.length > before) return undefined
  return {
    serverNames: cfg.serverNames,
    certPem: blocks.map((b) => b.text).join('\n') + '\n',
    keyPem: key.keyPem,
    passphrase: key.passphrase,
    leaf: leaf.x509,
    issuer: certs[1]?.x509,
  }
}

/**
 * Loads a trust bundle. Anchors must be self-signed CA certificates: OpenSSL
 * (as Node configures it) does not accept an intermediate as an anchor, and
 * our own path check must agree with it.
 */
export function loadTrustBundle(sources: readonly PemSource[], ctx: SourceContext, path: Path, issues: ConfigIssue[]): TrustGroup | undefined {
  const before = issues.length
  const anchors: ParsedCert[] = []
  const pems: string[] = []
  sources.forEach((source, k) => {
    const blocks = readBlocks(source, ctx, [...path, k], issues)
    if (!blocks) return
    if (blocks.length === 0) issues.push({ path: [...path, k], message: `${sourceName(source)}: no certificate` })
    blocks.forEach((block, i) => {
      const where = `${sourceName(source)}: block ${i + 1}`
      if (block.label !== 'CERTIFICATE') {
        issues.push({ path: [...path, k], message: `${where} is ${block.label}; a trust bundle holds CA certificates only` })
        return
      }
      let cert: ParsedCert
      try {
        cert = parseCertificate(block.der)
      } catch {
        issues.push({ path: [...path, k], message: `${where} does not parse` })
        return
      }
      const dn = cert.fields.subject.text
      if (!cert.fields.isCa) issues.push({ path: [...path, k], message: `${where} (${dn}) is not a CA certificate` })
      else if (!cert.x509.checkIssued(cert.x509) || !cert.x509.verify(cert.publicKey)) {
        issues.push({ path: [...path, k], message: `${where} (${dn}) is not self-signed; list root CAs (clients send their intermediates)` })
      }
      const weak = keyWeakness(cert.publicKey)
      if (weak) issues.push({ path: [...path, k], message: `${where} (${dn}): ${weak}` })
      anchors.push(cert)
      pems.push(block.text)
    })
  })
  if (issues.length > before) return undefined
  return new TrustGroup(anchors, pems)
}
