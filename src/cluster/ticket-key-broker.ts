/**
 * The primary's session-ticket keys: one TicketKeyRotator per listener name
 * (the same class and interval a single-process listener uses), whose keys
 * are sent to every worker instead of applied to a server. All workers then
 * encrypt and decrypt tickets under the same key, so a session resumes on
 * whichever worker the next connection lands.
 *
 * Why not rely on Node: its cluster does hand every worker the first
 * worker's start-up key when they share a listening socket
 * (`tls.Server._getServerData` / `_setServerData`, unrelated to our keys),
 * but only that one. A rotation, or a reload's `setSecureContext()` (a new
 * random key in each worker), would split the workers for good, and a
 * replacement worker would get the stale start-up key.
 *
 * Decisions:
 * - A rotation starts when the first worker's listener asks for keys, at the
 *   interval that listener was configured with; a later ask with another
 *   interval (a reload changed `ticketKeyRotation`) restarts it.
 * - Workers hold a key only in memory, as the single process does; a
 *   replacement worker gets the current keys in its first message, before it
 *   binds, so its first tickets already resume elsewhere.
 * - For a moment after each rotation, workers disagree (IPC takes well under
 *   a millisecond per worker): a ticket issued under the new key and
 *   presented to a worker still on the old one gets a full handshake, never
 *   a failure.
 * - `rotateAll()` after a reload: in one process a reload starts a new key
 *   (the new secure context's), and cluster mode keeps that behaviour.
 */
import { TicketKeyRotator } from '../proxy/tls/ticket-keys.js'

interface Rotation {
  readonly intervalMs: number
  readonly rotator: TicketKeyRotator
  key: Buffer | undefined
}

/** Generates and rotates ticket keys per listener; `send` delivers each new key to all workers. */
export class TicketKeyBroker {
  private readonly rotations = new Map<string, Rotation>()

  constructor(private readonly send: (listener: string, key: Buffer) => void) {}

  /**
   * A worker's listener asks for keys. Returns the current key (starting the
   * rotation first if needed, which also sends the key to every worker).
   */
  request(listener: string, intervalMs: number): Buffer {
    const running = this.rotations.get(listener)
    if (running?.key && running.intervalMs === intervalMs) return running.key
    running?.rotator.stop()
    const rotation: Rotation = {
      intervalMs,
      key: undefined,
      rotator: new TicketKeyRotator({
        intervalMs,
        apply: (key) => {
          rotation.key = key
          this.send(listener, key)
        },
      }),
    }
    this.rotations.set(listener, rotation)
    rotation.rotator.start()
    return rotation.key!
  }

  /** The current key of every listener, for a worker that is starting. */
  current(): [string, Buffer][] {
    return [...this.rotations].flatMap(([listener, r]) => (r.key ? [[listener, r.key] as [string, Buffer]] : []))
  }

  /** A new key for every listener now (after a reload). */
  rotateAll(): void {
    for (const r of this.rotations.values()) r.rotator.rotate()
  }

  /** Stops every rotation. */
  stop(): void {
    for (const r of this.rotations.values()) r.rotator.stop()
    this.rotations.clear()
  }
}
