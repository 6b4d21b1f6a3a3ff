/**
 * `portcullis ca token create|list|revoke`: one-time enrollment tokens for
 * the EST server (`pki.est`). A token lets one device or partner system get
 * one certificate from `simpleenroll`, under its partner's policy.
 *
 * Decisions:
 * - `create` prints the token alone on stdout (so `TOKEN=$(portcullis ca
 *   token create ...)` works) and what it grants on stderr. It is shown only
 *   then: storage keeps its SHA-256 (src/control/est/est-tokens.ts).
 * - Creating a token is a CA act (it authorises issuance), so `create`
 *   checks the CA passphrase first, as `ca revoke` does. `list` and
 *   `revoke` do not: they grant nothing.
 * - The profile defaults to the partner's first allowed profile and must be
 *   one the partner's policy allows; the lifetime defaults to
 *   `pki.est.tokenTtl` and may not exceed `pki.est.maxTokenTtl`. Both are
 *   refused here rather than at enrollment time, where the device could
 *   not fix them.
 * - Tokens are listed by id: the first 16 hex characters of the hash, never
 *   anything that could be redeemed.
 */
import { EnrollmentTokens, type ListedToken } from '../control/est/est-tokens.js'
import { loadCa } from '../pki/ca-load.js'
import { caExit, CaCliFailure, CaUsageError, durationFlag, loadCaContext, parseCaArgs, runCaCommand, stringFlag, withInventory, type CaContext, type CaIo } from './ca-common.js'

/** Usage of `ca token`. */
export const caTokenUsage = [
  'usage: portcullis ca token create --config FILE --partner NAME [--profile partner|client|server|spiffe] [--ttl 24h]',
  '       portcullis ca token list --config FILE [--json]',
  '       portcullis ca token revoke ID --config FILE',
].join('\n')

function estOf(ctx: CaContext): NonNullable<CaContext['pki']['est']> {
  if (!ctx.pki.est) throw new CaCliFailure('the config has no `pki.est` section; enrollment tokens are redeemed at the EST server it configures (docs/operations.md, "Enrollment over EST")')
  return ctx.pki.est
}

async function create(args: readonly string[], io: CaIo): Promise<number> {
  const { values } = parseCaArgs(args, { partner: { type: 'string' }, profile: { type: 'string' }, ttl: { type: 'string' } }, false)
  const partnerName = stringFlag(values, 'partner', true)
  const ttlMs = durationFlag(values, 'ttl')
  const ctx = loadCaContext(values, io)
  const est = estOf(ctx)
  const partner = ctx.pki.partners[partnerName]
  if (!partner) {
    throw new CaCliFailure(`unknown partner "${partnerName}"; known partners: ${Object.keys(ctx.pki.partners).join(', ') || '(none configured in pki.partners)'}`)
  }
  const profile = stringFlag(values, 'profile') ?? partner.profiles[0]
  if (profile === undefined || !(partner.profiles as readonly string[]).includes(profile)) {
    throw new CaCliFailure(`partner "${partnerName}" may not request profile "${profile ?? ''}"; its policy allows: ${partner.profiles.join(', ') || '(none)'}`)
  }
  const ttl = ttlMs ?? est.tokenTtl
  if (ttl > est.maxTokenTtl) throw new CaCliFailure(`--ttl is longer than pki.est.maxTokenTtl (${est.maxTokenTtl / 3_600_000} hours)`)
  await loadCa({ dir: ctx.caDir, passphrase: ctx.passphrase() })

  const now = io.clock.now()
  const made = await withInventory(ctx, io, (storage) => new EnrollmentTokens(storage.kv).create({ partner: partnerName, profile, ttlMs: ttl, now }))
  io.out(made.token)
  io.err(`token ${made.id} for partner ${partnerName}, profile ${profile}: one certificate from simpleenroll, until ${new Date(made.record.expiresAt).toISOString()}`)
  io.err('it is shown only now; only its hash is stored. Send it as the HTTP Basic password (curl -u ":$TOKEN") or "Authorization: Bearer $TOKEN".')
  return caExit.ok
}

function table(tokens: readonly ListedToken[]): string[] {
  const rows = [
    ['ID', 'PARTNER', 'PROFILE', 'CREATED', 'EXPIRES', 'STATUS'],
    ...tokens.map((t) => [
      t.id,
      t.partner,
      t.profile,
      new Date(t.createdAt).toISOString(),
      new Date(t.expiresAt).toISOString(),
      t.status === 'used' ? `used ${new Date(t.usedAt ?? 0).toISOString()} serial ${t.serial ?? '?'}` : t.status,
    ]),
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)))
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i]!))).join('  '))
}

async function list(args: readonly string[], io: CaIo): Promise<number> {
  const { values } = parseCaArgs(args, { json: { type: 'boolean' } }, false)
  const ctx = loadCaContext(values, io)
  const tokens = await withInventory(ctx, io, (storage) => new EnrollmentTokens(storage.kv).list(io.clock.now()))
  if (values.json === true) {
    for (const t of tokens) io.out(JSON.stringify({ ...t, createdAt: new Date(t.createdAt).toISOString(), expiresAt: new Date(t.expiresAt).toISOString(), ...(t.usedAt === undefined ? {} : { usedAt: new Date(t.usedAt).toISOString() }) }))
    return caExit.ok
  }
  if (tokens.length === 0) io.out('no enrollment tokens')
  else for (const line of table(tokens)) io.out(line)
  return caExit.ok
}

async function revoke(args: readonly string[], io: CaIo): Promise<number> {
  const { values, positionals } = parseCaArgs(args, {}, true)
  if (positionals.length !== 1 || !/^[0-9a-f]{8,64}$/i.test(positionals[0]!)) throw new CaUsageError('give exactly one token ID (at least 8 hex characters, as `ca token list` prints it)')
  const id = positionals[0]!.toLowerCase()
  const ctx = loadCaContext(values, io)
  const result = await withInventory(ctx, io, (storage) => new EnrollmentTokens(storage.kv).revoke(id))
  if ('error' in result) {
    throw new CaCliFailure(result.error === 'ambiguous' ? `more than one unused token id starts with ${id}; give more characters` : `no unused token with id ${id} (used and unknown tokens cannot be revoked)`)
  }
  io.out(`revoked token ${result.revoked.hash.slice(0, 16)} for partner ${result.revoked.partner}; it can no longer be redeemed`)
  return caExit.ok
}

const actions: Record<string, (args: readonly string[], io: CaIo) => Promise<number>> = { create, list, revoke }

/** Runs `ca token <create|list|revoke>`; returns the exit code. */
export function runCaToken(args: readonly string[], io: CaIo): Promise<number> {
  const [action, ...rest] = args
  return runCaCommand('token', caTokenUsage, io, async () => {
    const run = action !== undefined && Object.hasOwn(actions, action) ? actions[action] : undefined
    if (!run) throw new CaUsageError(action === undefined ? 'give an action: create, list or revoke' : `unknown action "${action}"`)
    return run(rest, io)
  })
}
