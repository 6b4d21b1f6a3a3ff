/**
 * Bodies stream through the upstream client without buffering: a 256 MiB
 * generated body goes up, comes back (echo) and is checked by SHA-256 on both
 * ends while the process RSS grows by less than half the body size; a
 * consumer that stops reading stops the upstream's writes (backpressure).
 *
 * Why 256 MiB and not 50: RSS also grows with garbage chunks waiting for the
 * GC (V8 lets some 30-70 MiB of external buffers pile up, whatever the body
 * size), so a body several times that size is needed for the check to tell
 * streaming from buffering. Measured growth is about 70 MiB for both 64 and
 * 256 MiB bodies.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { once } from 'node:events'
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Readable, Writable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Upstream, type UpstreamRequest } from '../../src/proxy/upstream/upstream.js'
import { createTestUpstream, upstreamRequest } from '../harness/upstream-client.js'

const MiB = 1024 * 1024
const BODY_BYTES = 256 * MiB
/** Buffering the body even once would pass this; streaming stays far below. */
const RSS_LIMIT = BODY_BYTES / 2
const CHUNK = 64 * 1024

const cleanups: (() => Promise<void>)[] = []
after(async () => {
  for (const c of cleanups.reverse()) await c()
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler)
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  cleanups.push(() => {
    server.closeAllConnections()
    return new Promise<void>((resolve) => server.close(() => resolve()))
  })
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

function upstream(url: string): Upstream {
  const u = createTestUpstream({ targets: [{ url }] }, { name: 'stream' })
  cleanups.push(() => u.destroy())
  return u
}

function request(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return upstreamRequest(over, 10000)
}

/** A lazily generated body: chunk i is filled with byte i % 251; nothing is kept. */
function generated(totalBytes: number): { stream: Readable; digest: () => string } {
  const hash = createHash('sha256')
  let sent = 0
  let i = 0
  const stream = new Readable({
    highWaterMark: CHUNK,
    read() {
      if (sent >= totalBytes) {
        this.push(null)
        return
      }
      const chunk = Buffer.alloc(Math.min(CHUNK, totalBytes - sent), i++ % 251)
      sent += chunk.length
      hash.update(chunk)
      this.push(chunk)
    },
  })
  return { stream, digest: () => hash.digest('hex') }
}

/** Counts and hashes what it is given, keeping nothing. */
class Sink extends Writable {
  bytes = 0
  private readonly hash = createHash('sha256')
  override _write(chunk: Buffer, _enc: BufferEncoding, done: () => void): void {
    this.bytes += chunk.length
    this.hash.update(chunk)
    done()
  }
  digest(): string {
    return this.hash.digest('hex')
  }
}

/** Samples RSS until stopped; returns the growth over the starting value. */
function watchRss(): () => number {
  const start = process.memoryUsage.rss()
  let peak = start
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage.rss())
  }, 10)
  return () => {
    clearInterval(timer)
    return Math.max(peak, process.memoryUsage.rss()) - start
  }
}

describe('streaming through the upstream client', { timeout: 60_000 }, () => {
  test('a 256 MiB body goes up and comes back (echo) intact without being buffered', async () => {
    let upstreamReceived = 0
    const url = await serve((req, res) => {
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      req.on('data', (c: Buffer) => {
        upstreamReceived += c.length
      })
      req.pipe(res)
    })
    const u = upstream(url)
    const stop = watchRss()
    const body = generated(BODY_BYTES)
    const r = await u.request(request({ method: 'POST', path: '/echo', body: body.stream }))
    assert.equal(r.ok, true)
    if (!r.ok) return
    const sink = new Sink()
    await pipeline(r.body, sink)
    const growth = stop()
    assert.equal(upstreamReceived, BODY_BYTES)
    assert.equal(sink.bytes, BODY_BYTES)
    assert.equal(sink.digest(), body.digest())
    assert.ok(growth < RSS_LIMIT, `RSS grew by ${(growth / MiB).toFixed(1)} MiB for a ${BODY_BYTES / MiB} MiB body`)
  })

  test('a 256 MiB download streams to a slow consumer without being buffered', async () => {
    const url = await serve((_req, res) => {
      res.writeHead(200, { 'content-length': String(BODY_BYTES) })
      generated(BODY_BYTES).stream.pipe(res)
    })
    const u = upstream(url)
    const stop = watchRss()
    const r = await u.request(request({ path: '/download' }))
    assert.equal(r.ok, true)
    if (!r.ok) return
    let bytes = 0
    let n = 0
    const slowSink = new Writable({
      highWaterMark: CHUNK,
      write(chunk: Buffer, _enc, done) {
        bytes += chunk.length
        // Every 256th chunk (about every 16 MiB) the consumer stalls briefly.
        if (++n % 256 === 0) setTimeout(done, 5)
        else done()
      },
    })
    await pipeline(r.body, slowSink)
    const growth = stop()
    assert.equal(bytes, BODY_BYTES)
    assert.ok(growth < RSS_LIMIT, `RSS grew by ${(growth / MiB).toFixed(1)} MiB for a ${BODY_BYTES / MiB} MiB body`)
  })

  test('a consumer that stops reading stops the upstream writer (backpressure reaches the upstream socket)', async () => {
    let written = 0
    let isBlocked = false
    const url = await serve((_req, res) => {
      res.writeHead(200)
      const chunk = Buffer.alloc(CHUNK, 7)
      const pump = () => {
        while (written < BODY_BYTES) {
          written += chunk.length
          if (!res.write(chunk)) {
            isBlocked = true
            res.once('drain', () => {
              isBlocked = false
              pump()
            })
            return
          }
        }
        res.end()
      }
      pump()
    })
    const u = upstream(url)
    const r = await u.request(request({ path: '/firehose' }))
    assert.equal(r.ok, true)
    if (!r.ok) return
    // Not reading at all for a while: the upstream must stall far below the body size.
    await sleep(300)
    assert.equal(isBlocked, true, 'upstream writes are blocked')
    assert.ok(written < 16 * MiB, `upstream wrote ${(written / MiB).toFixed(1)} MiB while nobody read`)
    const sink = new Sink()
    await pipeline(r.body, sink)
    assert.equal(sink.bytes, BODY_BYTES)
  })
})
