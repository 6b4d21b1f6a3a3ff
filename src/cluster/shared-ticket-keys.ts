/**
 * A cluster worker's session-ticket keys: the listeners apply whatever key
 * the primary last sent for their name, instead of rotating their own (see
 * ticket-key-broker.ts). It is the `ticketKeys` the worker's Gateway passes
 * to its listeners; the single-process path keeps `rotatingTicketKeys`.
 *
 * A listener starting before the primary has a key for its name (its first
 * ever start) asks for one and serves Node's random start-up key for the
 * round trip: tickets issued in that moment resume only on this worker.
 * After a reload (`onContextReplaced`) the current shared key is applied
 * again at once; the primary then rotates all keys, as a reload does in one
 * process.
 */
import type { TicketKeySource, TicketKeySourceFactory } from '../proxy/tls/ticket-keys.js'

/** The latest key per listener name, and the servers applying it. */
export class SharedTicketKeys {
  private readonly keys = new Map<string, Buffer>()
  private readonly appliers = new Map<string, Set<(key: Buffer) => void>>()

  /** `ask(listener, intervalMs)` requests a listener's current key from the primary. */
  constructor(private readonly ask: (listener: string, intervalMs: number) => void) {}

  /** A key from the primary: remembered and applied to every server of that listener (an old one draining included). */
  receive(listener: string, key: Buffer): void {
    this.keys.set(listener, key)
    for (const apply of this.appliers.get(listener) ?? []) apply(key)
  }

  /** The factory for GatewayDeps.ticketKeys. */
  readonly sourceFor: TicketKeySourceFactory = (listener, { intervalMs, apply }): TicketKeySource => {
    let isStarted = false
    const applyCurrent = () => {
      const key = this.keys.get(listener)
      if (key) apply(key)
    }
    return {
      start: () => {
        if (isStarted) return
        isStarted = true
        const set = this.appliers.get(listener) ?? new Set()
        set.add(apply)
        this.appliers.set(listener, set)
        applyCurrent()
        this.ask(listener, intervalMs)
      },
      stop: () => {
        this.appliers.get(listener)?.delete(apply)
      },
      onContextReplaced: applyCurrent,
    }
  }
}
