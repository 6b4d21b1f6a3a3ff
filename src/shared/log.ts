/**
 * The process logger (pino, JSON lines). Made once in main.ts and passed
 * down; nothing else creates loggers. Redaction is a second line of defence:
 * key material and secrets must never be passed to a log call at all.
 */
import { pino, type Logger, type DestinationStream } from 'pino'

export type { Logger } from 'pino'

/** Paths whose values are replaced by "[redacted]" wherever they appear. */
const redactPaths = ['*.key', '*.passphrase', '*.password', '*.secret', '*.token', '*.authorization', 'headers.authorization', 'headers.cookie']

/** A JSON logger writing to `destination` (default: stderr, so stdout stays for the access log). */
export function createLogger(opts: { level?: string; destination?: DestinationStream } = {}): Logger {
  return pino(
    {
      level: opts.level ?? 'info',
      base: { service: 'portcullis' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: redactPaths, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
    },
    opts.destination ?? pino.destination({ fd: 2, sync: false }),
  )
}

/** A logger that drops everything; for tests that do not look at logs. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' })
}
