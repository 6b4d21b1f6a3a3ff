/**
 * The identity assertion: a short-lived ES256 JWT, signed by the gateway, that
 * tells an upstream who called (`Portcullis-Identity` request header). It is
 * bound to the client certificate by `cnf.x5t#S256` (RFC 8705 3.1), so an
 * upstream that also sees RFC 9440 Client-Cert can check both agree, and it is
 * scoped by `aud` to one upstream, so a token leaked from one service is
 * useless at another.
 *
 * Signing is async (WebCrypto) and costs far more than the rest of the request
 * path, so tokens are cached per (certificate fingerprint, audience) and
 * reused until 20% of their lifetime remains. Tokens never outlive the
 * certificate they describe.
 */
import { createPrivateKey, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto'
import { SignJWT, calculateJwkThumbprint, importJWK, type JWK } from 'jose'
import type { Config } from '../config/schema/index.js'
import { readPem, readSecret, type SourceContext } from '../config/secrets.js'
import type { Clock } from '../shared/clock.js'
import type { Identity } from './context.js'

/** The validated `identityAssertion:` section. */
export type IdentityAssertionConfig = NonNullable<Config['identityAssertion']>

/** A public JWK as served in the JWKS. */
export interface PublicJwk {
  readonly kty: 'EC'
  readonly crv: 'P-256'
  readonly x: string
  readonly y: string
  /** RFC 7638 thumbprint (SHA-256, base64url). */
  readonly kid: string
  readonly alg: 'ES256'
  readonly use: 'sig'
}

interface CacheEntry {
  token: string | Promise<string>
  /** ms; before it the token was issued (clock moved back): re-sign. */
  readonly issuedAt: number
  /** ms; from here on a fresh token is signed. */
  readonly refreshAt: number
  /** ms; the token's exp. */
  readonly expiresAt: number
}

/** Reuse a token until this share of its lifetime is left. */
const REFRESH_REMAINING = 0.2
/** Bound on cached tokens; certificates are many only if the CA issues many. */
const MAX_CACHE = 10_000

/**
 * Signs identity assertions and publishes the verification key. One per
 * config version; safe to share across listeners and routes. `sign` is
 * synchronous on a cache hit and returns a Promise only when it must sign.
 */
export class IdentityAssertionSigner {
  private readonly cache = new Map<string, CacheEntry>()
  private readonly publicJwks: { readonly keys: readonly PublicJwk[] }

  private constructor(
    private readonly issuer: string,
    /** `aud` from config; undefined means "the upstream's name". */
    readonly audience: string | undefined,
    private readonly ttlMs: number,
    private readonly signingKey: CryptoKey,
    /** The key's RFC 7638 thumbprint, also the JWT header `kid`. */
    readonly kid: string,
    publicJwk: PublicJwk,
    /** The key object, kept only when generated so a reload can reuse it (see create). */
    private readonly generatedKey: KeyObject | undefined,
    private readonly clock: Clock,
  ) {
    this.publicJwks = Object.freeze({ keys: Object.freeze([publicJwk]) })
  }

  /**
   * Loads (or generates) the P-256 key. Throws an Error naming the problem
   * (never the key material) when the key is unreadable, encrypted without the
   * right passphrase, or not EC P-256. A generated key is taken over from
   * `previous` when given, so a config reload does not rotate it and break
   * upstreams that cache the JWKS; it still changes on restart.
   */
  static async create(
    cfg: IdentityAssertionConfig,
    deps: { readonly source: SourceContext; readonly clock: Clock; readonly previous?: IdentityAssertionSigner },
  ): Promise<IdentityAssertionSigner> {
    let key: KeyObject
    let generated: KeyObject | undefined
    if (cfg.key) {
      const text = readPem(cfg.key, deps.source)
      const passphrase = cfg.passphrase ? readSecret(cfg.passphrase, deps.source) : undefined
      try {
        key = createPrivateKey({ key: text, format: 'pem', passphrase })
      } catch (err) {
        throw new Error(`identityAssertion.key: cannot read the private key (${(err as NodeJS.ErrnoException).code ?? 'invalid'})`)
      }
    } else {
      generated = deps.previous?.generatedKey ?? generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey
      key = generated
    }
    if (key.asymmetricKeyType !== 'ec' || key.asymmetricKeyDetails?.namedCurve !== 'prime256v1') {
      throw new Error('identityAssertion.key: expected an EC P-256 private key (ES256)')
    }
    const jwk = key.export({ format: 'jwk' })
    const { kty, crv, x, y } = jwk
    if (kty !== 'EC' || crv !== 'P-256' || !x || !y) throw new Error('identityAssertion.key: expected an EC P-256 private key (ES256)')
    const kid = await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256')
    const signingKey = (await importJWK({ ...(jwk as JWK), alg: 'ES256' }, 'ES256')) as CryptoKey
    const publicJwk: PublicJwk = Object.freeze({ kty, crv, x, y, kid, alg: 'ES256', use: 'sig' })
    return new IdentityAssertionSigner(cfg.issuer, cfg.audience, cfg.ttl, signingKey, kid, publicJwk, generated, deps.clock)
  }

  /**
   * A token for `identity` at `audience`: `iss`, `aud`, `sub` (SPIFFE id, else
   * subject DN), `iat`/`nbf`/`exp` from the injected clock, `jti`, and
   * `cnf.x5t#S256`. A cached token is returned as a string while more than
   * 20% of its lifetime is left; otherwise a Promise of a new one (concurrent
   * callers share it).
   */
  sign(identity: Identity, audience: string): string | Promise<string> {
    const now = this.clock.now()
    const cacheKey = `${identity.fingerprint256}\n${audience}`
    const hit = this.cache.get(cacheKey)
    if (hit && now >= hit.issuedAt && now < hit.refreshAt) return hit.token

    const iat = Math.floor(now / 1000)
    // Whole seconds, and never past the certificate's own notAfter.
    const exp = Math.min(iat + Math.max(1, Math.ceil(this.ttlMs / 1000)), Math.floor(identity.notAfter / 1000))
    const expiresAt = exp * 1000
    const entry: CacheEntry = {
      token: '',
      issuedAt: iat * 1000,
      refreshAt: expiresAt - (expiresAt - iat * 1000) * REFRESH_REMAINING,
      expiresAt,
    }
    const pending = new SignJWT({
      cnf: { 'x5t#S256': Buffer.from(identity.fingerprint256, 'hex').toString('base64url') },
    })
      .setProtectedHeader({ alg: 'ES256', kid: this.kid, typ: 'JWT' })
      .setIssuer(this.issuer)
      .setAudience(audience)
      .setSubject(identity.spiffeId ?? identity.subject)
      .setIssuedAt(iat)
      .setNotBefore(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.signingKey)
      .then(
        (token) => {
          if (this.cache.get(cacheKey) === entry) entry.token = token
          return token
        },
        (err: unknown) => {
          if (this.cache.get(cacheKey) === entry) this.cache.delete(cacheKey)
          throw err
        },
      )
    entry.token = pending
    if (this.cache.size >= MAX_CACHE) this.evict(now)
    this.cache.set(cacheKey, entry)
    return pending
  }

  /** The public key set to publish (at `jwksPath`); kid is the RFC 7638 thumbprint. */
  jwks(): { readonly keys: readonly PublicJwk[] } {
    return this.publicJwks
  }

  /** Drops expired entries; if that frees nothing, starts over (bounded memory beats hit rate). */
  private evict(now: number): void {
    for (const [k, e] of this.cache) if (e.expiresAt <= now) this.cache.delete(k)
    if (this.cache.size >= MAX_CACHE) this.cache.clear()
  }
}
