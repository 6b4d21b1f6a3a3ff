/**
 * The source of "now" for every time comparison: certificate validity, token
 * expiry, timeouts that are decisions (not socket timers), renewal windows.
 * Tests pin it instead of patching Date, as jose takes `currentDate`.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch. */
  now(): number
}

/** The wall clock. */
export const systemClock: Clock = { now: () => Date.now() }

/** A clock that stands still until moved; for tests and pure decisions. */
export class FixedClock implements Clock {
  constructor(private ms: number) {}
  now(): number {
    return this.ms
  }
  /** Moves the clock forward by `ms`. */
  advance(ms: number): void {
    this.ms += ms
  }
  set(ms: number): void {
    this.ms = ms
  }
}
