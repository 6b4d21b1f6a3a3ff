/**
 * Raw TLS clients that send bytes no well-behaved HTTP client would: request
 * smuggling payloads over HTTP/1.1, and HTTP/2 HEADERS frames with fields that
 * Node's own http2 client refuses to send (connection-specific headers,
 * `content-length: 05`, obs-text). The HPACK encoder is the smallest that is
 * correct: every field as "literal without indexing, new name", no Huffman.
 */
import { connect, type TLSSocket } from 'node:tls'

export interface RawTlsOptions {
  readonly port: number
  readonly host?: string
  readonly servername?: string
  /** Client certificate and key (PEM text). */
  readonly cert?: string
  readonly key?: string
  /** Close our side after this long without data (ms). Default 1500. */
  readonly idleMs?: number
}

function open(opts: RawTlsOptions, alpn: string): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      port: opts.port,
      host: opts.host ?? '127.0.0.1',
      servername: opts.servername ?? 'localhost',
      cert: opts.cert,
      key: opts.key,
      rejectUnauthorized: false,
      ALPNProtocols: [alpn],
    })
    socket.once('secureConnect', () => resolve(socket))
    socket.once('error', reject)
  })
}

export interface RawHttp1Result {
  /** Status of the first response, undefined when the server closed without one. */
  readonly status: number | undefined
  /** Everything the server sent, latin1. */
  readonly text: string
  /** Number of HTTP/1.x status lines seen (a smuggled second request would add one). */
  readonly responses: number
  /** True when the server closed the connection (rather than our idle timer). */
  readonly closedByServer: boolean
}

/** Writes `payload` as-is after the handshake and collects the answer until close or idle. */
export async function rawHttp1(opts: RawTlsOptions, payload: string | Buffer): Promise<RawHttp1Result> {
  const socket = await open(opts, 'http/1.1')
  return new Promise((resolve) => {
    let text = ''
    let closedByServer = true
    let timer: NodeJS.Timeout
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(() => {
        closedByServer = false
        socket.destroy()
      }, opts.idleMs ?? 1500)
    }
    socket.on('data', (d: Buffer) => {
      text += d.toString('latin1')
      arm()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      const match = /^HTTP\/1\.[01] (\d{3})/.exec(text)
      resolve({
        status: match ? Number(match[1]) : undefined,
        text,
        responses: (text.match(/HTTP\/1\.[01] \d{3} /g) ?? []).length,
        closedByServer,
      })
    })
    arm()
    socket.write(typeof payload === 'string' ? Buffer.from(payload, 'latin1') : payload)
  })
}

function frame(type: number, flags: number, stream: number, payload: Buffer): Buffer {
  const head = Buffer.alloc(9)
  head.writeUIntBE(payload.length, 0, 3)
  head[3] = type
  head[4] = flags
  head.writeUInt32BE(stream, 5)
  return Buffer.concat([head, payload])
}

/** HPACK integer with an N-bit prefix (RFC 7541 5.1). */
function hpackInt(value: number, prefixBits: number, firstByteFlags: number): Buffer {
  const max = (1 << prefixBits) - 1
  if (value < max) return Buffer.from([firstByteFlags | value])
  const out = [firstByteFlags | max]
  let rest = value - max
  while (rest >= 128) {
    out.push((rest % 128) + 128)
    rest = Math.floor(rest / 128)
  }
  out.push(rest)
  return Buffer.from(out)
}

function hpackString(s: string): Buffer {
  const bytes = Buffer.from(s, 'latin1')
  return Buffer.concat([hpackInt(bytes.length, 7, 0), bytes])
}

/** A header block of literal fields without indexing (RFC 7541 6.2.2), names and values latin1. */
export function hpackBlock(fields: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(fields.flatMap(([n, v]) => [Buffer.from([0x00]), hpackString(n), hpackString(v)]))
}

export interface RawHttp2Result {
  /** Frames received on stream 1 and the connection, e.g. ["HEADERS", "DATA", "RST_STREAM(1)"]. */
  readonly frames: readonly string[]
  /**
   * Response status when the server encoded it as a static-table entry
   * (200, 204, 206, 304, 400, 404, 500 — nghttp2 does for those); else undefined.
   */
  readonly status: number | undefined
  /** DATA payload on stream 1, utf8. */
  readonly body: string
}

const STATIC_STATUS: Record<number, number> = { 0x88: 200, 0x89: 204, 0x8a: 206, 0x8b: 304, 0x8c: 400, 0x8d: 404, 0x8e: 500 }

/**
 * Opens an h2 connection, sends one request on stream 1 with exactly these
 * fields (pseudo-headers included, in the given order) and an optional body,
 * and collects frames until the stream ends, is reset, or the idle timer fires.
 */
export async function rawHttp2(
  opts: RawTlsOptions,
  fields: readonly (readonly [string, string])[],
  body?: string,
): Promise<RawHttp2Result> {
  const socket = await open(opts, 'h2')
  return new Promise((resolve) => {
    const frames: string[] = []
    let status: number | undefined
    let data = ''
    let buf = Buffer.alloc(0)
    let timer: NodeJS.Timeout
    const finish = () => {
      clearTimeout(timer)
      socket.destroy()
    }
    const arm = () => {
      clearTimeout(timer)
      timer = setTimeout(finish, opts.idleMs ?? 1500)
    }
    socket.on('data', (chunk: Buffer) => {
      buf = Buffer.concat([buf, chunk])
      while (buf.length >= 9) {
        const len = buf.readUIntBE(0, 3)
        if (buf.length < 9 + len) break
        const type = buf[3]!
        const flags = buf[4]!
        const stream = buf.readUInt32BE(5) & 0x7fffffff
        const payload = buf.subarray(9, 9 + len)
        buf = buf.subarray(9 + len)
        if (type === 4 && (flags & 1) === 0) socket.write(frame(4, 1, 0, Buffer.alloc(0))) // ack SETTINGS
        if (stream !== 1 && type !== 7) continue
        if (type === 1) {
          frames.push('HEADERS')
          if (status === undefined) status = STATIC_STATUS[payload[flags & 0x20 ? 5 : 0] ?? 0]
          if (flags & 1) finish()
        } else if (type === 0) {
          frames.push('DATA')
          data += payload.toString('utf8')
          if (flags & 1) finish()
        } else if (type === 3) {
          frames.push(`RST_STREAM(${payload.readUInt32BE(0)})`)
          finish()
        } else if (type === 7) {
          frames.push(`GOAWAY(${payload.readUInt32BE(4)})`)
          finish()
        }
      }
      arm()
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      clearTimeout(timer)
      resolve({ frames, status, body: data })
    })
    arm()
    socket.write(Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1'))
    socket.write(frame(4, 0, 0, Buffer.alloc(0)))
    socket.write(frame(1, 0x4 | (body === undefined ? 0x1 : 0), 1, hpackBlock(fields)))
    if (body !== undefined) socket.write(frame(0, 0x1, 1, Buffer.from(body, 'latin1')))
  })
}
