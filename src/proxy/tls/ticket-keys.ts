/**
 * Session-ticket key rotation. A ticket is the session state encrypted under
 * the server's ticket key; whoever holds the key can decrypt recorded TLS 1.2
 * traffic resumed from it, and a stolen ticket resumes until the key changes.
 * So the key is random, lives only in memory, and is replaced every
 * `ticketKeyRotation`: older tickets then stop resuming (a full handshake
 * follows, not a failure). Only one key is kept; we accept a full handshake
 * after each rotation in exchange for a short, exact ticket lifetime.
 */
import { randomBytes } from 'node:crypto'

/** How often, and how to apply a key (e.g. `(key) => server.setTicketKeys(key)`). */
export interface TicketKeyRotatorOptions {
  readonly intervalMs: number
  readonly apply: (key: Buffer) => void
}

/** Replaces a server's ticket key now and every `intervalMs` until stopped. */
export class TicketKeyRotator {
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
    this.apply(randomBytes(48))
  }
}
