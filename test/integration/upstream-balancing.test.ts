/**
 * Upstream balancing and health against real HTTP servers on 127.0.0.1:
 * weighted round-robin spread, least_request, passive ejection with a pinned
 * clock, active probes, capacity limits and graceful close.
 */
import { after, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { type Upstream, type UpstreamRequest, type UpstreamResult } from '../../src/proxy/upstream/upstream.js'
import { createTestUpstream, upstreamRequest } from '../harness/upstream-client.js'
import { FixedClock, systemClock, type Clock } from '../../src/shared/clock.js'

interface TestServer {
  readonly url: string
  readonly hits: string[]
  close(): Promise<void>
}

const servers: TestServer[] = []
const upstreams: Upstream[] = []
after(async () => {
  await Promise.all(upstreams.map((u) => u.destroy()))
  await Promise.all(servers.map((s) => s.close()))
})

async function serve(handler: (req: IncomingMessage, res: ServerResponse) => void = (_q, r) => r.end('ok')): Promise<TestServer> {
  const hits: string[] = []
  const server: Server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`)
    handler(req, res)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  const s: TestServer = {
    url: `http://127.0.0.1:${port}`,
    hits,
    close: () => {
      server.closeAllConnections()
      return new Promise((resolve) => server.close(() => resolve()))
    },
  }
  servers.push(s)
  return s
}

function upstream(cfg: Record<string, unknown>, clock: Clock = systemClock): Upstream {
  const u = createTestUpstream(cfg, { clock })
  upstreams.push(u)
  return u
}

function request(over: Partial<UpstreamRequest> = {}): UpstreamRequest {
  return upstreamRequest(over, 2000)
}

async function drain(r: UpstreamResult): Promise<string> {
  if (!r.ok) return ''
  let text = ''
  for await (const chunk of r.body) text += String(chunk)
  return text
}

/** Sends n sequential GETs and returns the targets that answered. */
async function spread(u: Upstream, n: number, path = '/'): Promise<string[]> {
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const r = await u.request(request({ path }))
    assert.equal(r.ok, true, `request ${i} failed: ${r.ok ? '' : r.denial.reason}`)
    await drain(r)
    out.push(r.target ?? '-')
  }
  return out
}

function count(list: readonly string[], value: string): number {
  return list.filter((x) => x === value).length
}

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (!(await check())) {
    if (Date.now() > deadline) assert.fail('condition not met in time')
    await sleep(20)
  }
}

describe('upstream balancing', { timeout: 20_000 }, () => {
  test('round_robin spreads requests by weight (3:1)', async () => {
    const a = await serve()
    const b = await serve()
    const u = upstream({ targets: [{ url: a.url, weight: 3 }, { url: b.url, weight: 1 }] })
    const got = await spread(u, 40)
    assert.equal(count(got, a.url), 30)
    assert.equal(count(got, b.url), 10)
    assert.equal(a.hits.length, 30)
    assert.equal(b.hits.length, 10)
  })

  test('least_request sends new requests to the idle target while the other is busy', async () => {
    const held: ServerResponse[] = []
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/hold') held.push(res)
      else res.end('quick')
    }
    const a = await serve(handler)
    const b = await serve(handler)
    const u = upstream({ targets: [{ url: a.url }, { url: b.url }], balancing: 'least_request' })
    const slow = u.request(request({ path: '/hold' }))
    await until(() => held.length === 1, 2000)
    const busy = a.hits.includes('GET /hold') ? a.url : b.url
    const idle = busy === a.url ? b.url : a.url
    const got = await spread(u, 10)
    assert.equal(count(got, idle), 10)
    held[0]!.end('done')
    assert.equal(await drain(await slow), 'done')
  })

  test('round_robin, unlike least_request, keeps alternating while one target is busy', async () => {
    const held: ServerResponse[] = []
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      if (req.url === '/hold') held.push(res)
      else res.end('quick')
    }
    const a = await serve(handler)
    const b = await serve(handler)
    const u = upstream({ targets: [{ url: a.url }, { url: b.url }] })
    const slow = u.request(request({ path: '/hold' }))
    await until(() => held.length === 1, 2000)
    const got = await spread(u, 10)
    assert.equal(count(got, a.url), 5)
    held[0]!.end()
    await drain(await slow)
  })
})

describe('upstream health', { timeout: 20_000 }, () => {
  test('ejects a target after N failing answers and restores it after the cool-off (pinned clock)', async () => {
    const bad = await serve((_q, r) => {
      r.statusCode = 503
      r.end('down')
    })
    const good = await serve()
    const clock = new FixedClock(Date.UTC(2030, 0, 1))
    const u = upstream(
      { targets: [{ url: bad.url }, { url: good.url }], healthCheck: { passive: { consecutiveFailures: 2, ejectFor: '30s' } } },
      clock,
    )
    // Alternates until the bad target has answered 503 twice; a 503 answer is passed through, not retried.
    const first = []
    for (let i = 0; i < 4; i++) {
      const r = await u.request(request())
      assert.equal(r.ok, true)
      if (r.ok) first.push(r.statusCode)
      await drain(r)
    }
    assert.deepEqual(first.sort(), [200, 200, 503, 503])
    assert.equal(bad.hits.length, 2)

    const during = await spread(u, 10)
    assert.equal(count(during, good.url), 10, 'ejected target gets no traffic')
    clock.advance(29_999)
    assert.equal(count(await spread(u, 4), good.url), 4, 'still ejected just before the cool-off ends')
    clock.advance(1)
    const afterCoolOff = await spread(u, 4)
    assert.equal(count(afterCoolOff, bad.url), 2, 'back in rotation after the cool-off')
    assert.equal(bad.hits.length, 4)
  })

  test('ejects a target whose connections are refused, and answers upstream_unavailable when none is left', async () => {
    const gone = await serve()
    await gone.close()
    const u = upstream({ targets: [{ url: gone.url }], healthCheck: { passive: { consecutiveFailures: 1 } } })
    const r1 = await u.request(request())
    assert.equal(r1.ok, false)
    if (!r1.ok) assert.equal(r1.denial.reason, 'upstream_connect_failed')
    const r2 = await u.request(request())
    assert.equal(r2.ok, false)
    if (!r2.ok) {
      assert.equal(r2.denial.reason, 'upstream_unavailable')
      assert.equal(r2.attempts, 0)
    }
  })

  test('active probes take out a target answering 500 and bring it back when it recovers', async () => {
    let isFailing = false
    const probes: (string | undefined)[] = []
    const flaky = await serve((req, res) => {
      if (req.url === '/healthz') probes.push(req.headers['user-agent'])
      res.statusCode = isFailing && req.url === '/healthz' ? 500 : 200
      res.end()
    })
    const steady = await serve()
    const u = upstream({
      targets: [{ url: flaky.url }, { url: steady.url }],
      healthCheck: { active: { interval: '40ms', timeout: '30ms', unhealthyThreshold: 2, healthyThreshold: 2 } },
    })
    u.start()
    await until(() => probes.length >= 1, 2000)
    assert.equal(probes[0], 'portcullis-health-check')
    assert.equal(count(await spread(u, 4, '/work'), flaky.url), 2, 'healthy at start')

    isFailing = true
    const failAt = probes.length
    await until(() => probes.length >= failAt + 3, 3000)
    assert.equal(count(await spread(u, 6, '/work'), steady.url), 6, 'out of rotation after failed probes')

    isFailing = false
    const okAt = probes.length
    await until(() => probes.length >= okAt + 3, 3000)
    assert.equal(count(await spread(u, 6, '/work'), flaky.url), 3, 'back after passing probes')
  })

  test('stops probing on close', async () => {
    const s = await serve()
    const u = upstream({ targets: [{ url: s.url }], healthCheck: { active: { interval: '20ms', timeout: '10ms' } } })
    u.start()
    await until(() => s.hits.length >= 2, 2000)
    await u.close()
    const seen = s.hits.length
    await sleep(100)
    assert.equal(s.hits.length, seen)
  })
})

describe('upstream capacity and lifecycle', { timeout: 20_000 }, () => {
  test('answers upstream_unavailable when every target is full (connections plus pending)', async () => {
    const held: ServerResponse[] = []
    const s = await serve((_q, res) => held.push(res))
    const u = upstream({ targets: [{ url: s.url }], connectionsPerTarget: 1, maxPendingRequests: 1 })
    const first = u.request(request())
    const second = u.request(request())
    const third = await u.request(request())
    assert.equal(third.ok, false)
    if (!third.ok) assert.equal(third.denial.reason, 'upstream_unavailable')
    await until(() => held.length === 1, 2000)
    held[0]!.end('one')
    assert.equal(await drain(await first), 'one')
    await until(() => held.length === 2, 2000)
    held[1]!.end('two')
    assert.equal(await drain(await second), 'two')
  })

  test('close lets an in-flight response finish and refuses new requests', async () => {
    const held: ServerResponse[] = []
    const s = await serve((_q, res) => held.push(res))
    const u = upstream({ targets: [{ url: s.url }] })
    const inflight = u.request(request())
    await until(() => held.length === 1, 2000)
    const closing = u.close()
    const late = await u.request(request())
    assert.equal(late.ok, false)
    if (!late.ok) assert.equal(late.denial.reason, 'upstream_unavailable')
    held[0]!.end('finished')
    assert.equal(await drain(await inflight), 'finished')
    await closing
  })

  test('destroy fails in-flight requests at once with upstream_unavailable', async () => {
    const held: ServerResponse[] = []
    const s = await serve((_q, res) => held.push(res))
    const u = upstream({ targets: [{ url: s.url }], healthCheck: { passive: { consecutiveFailures: 1 } } })
    const inflight = u.request(request())
    await until(() => held.length === 1, 2000)
    await u.destroy()
    const r = await inflight
    assert.equal(r.ok, false)
    if (!r.ok) assert.equal(r.denial.reason, 'upstream_unavailable')
  })
})
