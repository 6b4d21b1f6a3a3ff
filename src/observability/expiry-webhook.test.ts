import assert from 'node:assert/strict'
import { createHmac, timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Writable } from 'node:stream'
import { after, before, test } from 'node:test'
import { pino } from 'pino'
import { FixedClock } from '../shared/clock.js'
import { newEventId, WebhookSender, type ExpiryEvent, type WebhookConfig } from './expiry-webhook.js'
import { createMetricsRegistry, type Registry } from './metrics.js'

const SECRET = 'a-webhook-secret-of-at-least-32-characters'

interface Received {
  readonly headers: IncomingHttpHeaders
  readonly body: string
}

/** Answers each request with the next of `answers` (default 200); a `hang` answer never responds. */
let answers: (number | 'hang')[] = []
const received: Received[] = []
const hanging: ServerResponse[] = []
const server = createServer((req, res) => {
  let body = ''
  req.on('data', (c: Buffer) => (body += c.toString('utf8')))
  req.on('end', () => {
    received.push({ headers: req.headers, body })
    const answer = answers.shift() ?? 200
    if (answer === 'hang') hanging.push(res)
    else res.writeHead(answer, { 'content-length': 0 }).end()
  })
})
let url = ''

before(async () => {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/expiry?token=abc`
})
after(async () => {
  for (const res of hanging) res.destroy()
  server.closeAllConnections()
  await new Promise<void>((ok) => server.close(() => ok()))
})

function setup(config: Partial<WebhookConfig> = {}, env: Record<string, string> = { HOOK_SECRET: SECRET }) {
  const lines: Record<string, unknown>[] = []
  const log = pino({ level: 'info' }, new Writable({ write: (c: Buffer, _e, done) => (c.toString().split('\n').filter(Boolean).forEach((l) => lines.push(JSON.parse(l))), done()) }))
  const registry = createMetricsRegistry()
  const clock = new FixedClock(Date.UTC(2026, 4, 1, 12, 0, 0))
  const sender = new WebhookSender({ source: { baseDir: '/', env }, clock, log, metrics: registry })
  const cfg: WebhookConfig = { url, secret: { env: 'HOOK_SECRET' }, timeout: 2000, retries: 3, ...config }
  return { sender, cfg, lines, registry, clock }
}

function event(): ExpiryEvent {
  return {
    id: newEventId(),
    event: 'certificate.expiring',
    threshold: '7d',
    time: '2026-05-01T12:00:00.000Z',
    certificate: {
      subject: 'CN=api.example.com',
      issuer: 'CN=Example CA',
      serial: '1a2b',
      fingerprint256: 'ab'.repeat(32),
      notBefore: '2026-04-01T00:00:00.000Z',
      notAfter: '2026-05-07T00:00:00.000Z',
      secondsLeft: 475200,
      uses: [{ kind: 'listener_certificate', name: 'main', location: 'listeners.main.tls.certificates.0 (certs/server.pem)' }],
    },
  }
}

/** The receiver's check, written from the docs with node:crypto only. */
function isAuthentic(r: Received, secret: string): boolean {
  const timestamp = String(r.headers['x-portcullis-timestamp'])
  const expected = Buffer.from(`sha256=${createHmac('sha256', secret).update(`${timestamp}.${r.body}`).digest('hex')}`)
  const got = Buffer.from(String(r.headers['x-portcullis-signature']))
  return got.length === expected.length && timingSafeEqual(got, expected)
}

async function outcomes(registry: Registry): Promise<Record<string, number>> {
  const m = await registry.getSingleMetric('portcullis_certificate_expiry_webhook_deliveries_total')!.get()
  return Object.fromEntries(m.values.map((v) => [String(v.labels.outcome), v.value]))
}

test('POSTs the event as JSON with a signature over timestamp and body that a receiver can verify', async () => {
  received.length = 0
  answers = []
  const { sender, cfg, registry, clock } = setup()
  const e = event()
  sender.send(cfg, e)
  await sender.idle()
  assert.equal(received.length, 1)
  const r = received[0]!
  assert.deepEqual(JSON.parse(r.body), e)
  assert.equal(r.headers['content-type'], 'application/json')
  assert.equal(r.headers['x-portcullis-event'], 'certificate.expiring')
  assert.equal(r.headers['x-portcullis-delivery'], e.id)
  assert.equal(r.headers['x-portcullis-timestamp'], String(clock.now() / 1000), 'the injected clock, in seconds')
  assert.ok(isAuthentic(r, SECRET), 'the signature verifies with the secret')
  assert.ok(!isAuthentic(r, `${SECRET}x`), 'another secret does not verify')
  assert.ok(!isAuthentic({ ...r, body: r.body.replace('7d', '1d') }, SECRET), 'a changed body does not verify')
  assert.ok(!isAuthentic({ ...r, headers: { ...r.headers, 'x-portcullis-timestamp': '1' } }, SECRET), 'a changed timestamp does not verify')
  assert.deepEqual(await outcomes(registry), { delivered: 1 })
  await sender.close()
})

test('retries a 503 with backoff, keeping the delivery id and signing each attempt afresh', async () => {
  received.length = 0
  answers = [503, 200]
  const { sender, cfg, registry, clock } = setup()
  sender.send(cfg, event())
  setTimeout(() => clock.advance(60_000), 100)
  const started = performance.now()
  await sender.idle()
  const waited = performance.now() - started
  assert.equal(received.length, 2)
  assert.equal(received[0]!.headers['x-portcullis-delivery'], received[1]!.headers['x-portcullis-delivery'])
  assert.notEqual(received[0]!.headers['x-portcullis-timestamp'], received[1]!.headers['x-portcullis-timestamp'], 'the retry has a fresh timestamp')
  assert.ok(received.every((r) => isAuthentic(r, SECRET)), 'every attempt is signed')
  assert.ok(waited >= 450, `backed off (${Math.round(waited)} ms)`)
  assert.deepEqual(await outcomes(registry), { delivered: 1 })
  await sender.close()
})

test('gives up at once on a 400, logs the failure by origin without the secret or the URL path, and counts it', async () => {
  received.length = 0
  answers = [400]
  const { sender, cfg, registry, lines } = setup()
  sender.send(cfg, event())
  await sender.idle()
  assert.equal(received.length, 1)
  assert.deepEqual(await outcomes(registry), { failed: 1 })
  const failure = lines.find((l) => l.msg === 'expiry webhook: delivery failed; the announcement is in this log only')
  assert.ok(failure, 'the failure is logged')
  assert.equal(failure.error, 'HTTP 400')
  assert.equal(failure.webhook, new URL(url).origin)
  const text = JSON.stringify(lines)
  assert.ok(!text.includes(SECRET) && !text.includes('token=abc') && !text.includes('/hooks/'), 'neither the secret nor the URL path is logged')
  await sender.close()
})

test('an attempt that gets no answer ends at the timeout; retries exhausted count as one failure', async () => {
  received.length = 0
  answers = ['hang', 'hang']
  const { sender, cfg, registry, lines } = setup({ timeout: 300, retries: 1 })
  sender.send(cfg, event())
  await sender.idle()
  assert.equal(received.length, 2)
  assert.deepEqual(await outcomes(registry), { failed: 1 })
  assert.match(String(lines.find((l) => l.error)?.error), /no answer within 300 ms/)
  await sender.close()
})

test('a secret shorter than 32 characters or unset is refused before anything is sent', async () => {
  received.length = 0
  for (const env of [{ HOOK_SECRET: 'short' }, {}] as Record<string, string>[]) {
    const { sender, cfg, registry, lines } = setup({}, env)
    sender.send(cfg, event())
    await sender.idle()
    assert.deepEqual(await outcomes(registry), { failed: 1 })
    assert.match(String(lines.find((l) => l.error)?.error), /shorter than 32 characters|HOOK_SECRET is not set/)
    assert.ok(!JSON.stringify(lines).includes('short"'), 'the value is not logged')
    await sender.close()
  }
  assert.equal(received.length, 0)
})

test('close() aborts a delivery under way and drops what is queued', async () => {
  received.length = 0
  answers = ['hang']
  const { sender, cfg, registry } = setup({ timeout: 30_000 })
  sender.send(cfg, event())
  sender.send(cfg, event())
  while (received.length === 0) await new Promise((r) => setTimeout(r, 10))
  const started = performance.now()
  await sender.close()
  assert.ok(performance.now() - started < 1000, 'close did not wait for the timeout')
  assert.deepEqual(await outcomes(registry), { dropped: 2 })
  sender.send(cfg, event())
  assert.equal(received.length, 1, 'nothing is sent after close')
})
