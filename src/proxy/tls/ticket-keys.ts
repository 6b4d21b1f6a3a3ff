/**
 * Session-ticket key rotation. A ticket is the session state encrypted under
 * the server's ticket key; whoever holds the key can decrypt recorded TLS 1.2
 * traffic resumed from it, and a stolen ticket resumes until the key changes.
 * So the key is random, lives only in memory, and is replaced every
 * `ticketKeyRotation`: older tickets then stop resuming (a full handshake
 * follows, not a failure). Only one key is kept; we accept a full handshake
 * after each rotation in exchange for a short, exact ticket lifetime.
 *
 * One key, because that is all Node offers: `setTicketKeys` takes exactly 48
 * bytes, and Node's ticket callback decrypts only tickets carrying that key's
 * name. A ticket in flight under the previous key is not an error: OpenSSL
 * ignores it and the client does a full handshake.
 *
 * `server.setSecureContext()` (a reload) silently gives the server a new
 * random key; the listener then calls `onContextReplaced()` so the source
 * puts its own key back (a fresh one here; the current shared one in a
 * cluster worker, see src/cluster/).
 *
 * A listener takes its keys from a `TicketKeySource`. In one process that is
 * a `TicketKeyRotator`; in cluster mode the primary runs the rotators and
 * sends every key to all workers, so a ticket issued by one worker resumes on
 * another (src/cluster/).
 */
import { randomBytes } from 'node:crypto'

/** Size of a key for `server.setTicketKeys`: 16 bytes name, 16 HMAC, 16 AES. */
export const TICKET_KEY_BYTES = 48

/** Where one listener's ticket keys come from; the listener calls these. */
export interface TicketKeySource {
  /** Applies a key now (replacing Node's start-up key) and each later one. Idempotent. */
  start(): void
  /** Stops applying keys; the current key stays until the server closes. */
  stop(): void
  /** `setSecureContext()` replaced the server's key with a random one: apply ours again. */
  onContextReplaced(): void
}

/** Makes the TicketKeySource for a listener: its name, rotation interval and how to apply a key. */
export type TicketKeySourceFactory = (listener: string, options: TicketKeyRotatorOptions) => TicketKeySource

/** The single-process source: a TicketKeyRotator per listener. */
export const rotatingTicketKeys: TicketKeySourceFactory = (_listener, options) => new TicketKeyRotator(options)

/** How often, and how to apply a key (e.g. `(key) => server.setTicketKeys(key)`). */
export interface TicketKeyRotatorOptions {
  readonly intervalMs: number
  readonly apply: (key: Buffer) => void
}

/** Replaces a server's ticket key now and every `intervalMs` until stopped. */
export class TicketKeyRotator implements TicketKeySource {
  private timer: NodeJS.Timeout | undefined
  private readonly intervalMs: number
  private readonly apply: (key: Buffer) => void

  constructor(options: TicketKeyRotatorOptions) {
    if (!Number.isFinite(options.intervalMs) || options.intervalMs <= 0) throw new RangeError('ticket key rotation interval must be positive')
    this.intervalMs = options.intervalMs
    this.apply = options.apply
  }

  /**
   * Applies a fresh key at once (replacing Node's start-up key) and then every
   * interval. The timer is unref'd: it never keeps the process alive. Calling
   * start twice is a no-op.
   */
  start(): void {
    if (this.timer) return
    this.rotate()
    this.timer = setInterval(() => this.rotate(), this.intervalMs)
    this.timer.unref()
  }

  /** Stops rotating; the current key stays until the server closes. */
  stop(): void {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
  }

  /** Applies a new random 48-byte key (16 name, 16 HMAC, 16 AES) now; e.g. after `setSecureContext`. */
  rotate(): void {
    this.apply(randomBytes(TICKET_KEY_BYTES))
  }

  /** A reload starts a new key, as the new context's own random key did before this hook existed. */
  onContextReplaced(): void {
    this.rotate()
  }
}
