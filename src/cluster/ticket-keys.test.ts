/**
 * The primary's key broker and a worker's shared keys, wired back to back as
 * the IPC channel would (synchronously here); the real channel and real
 * resumption across processes are in test/integration/cluster.test.ts.
 */
import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { SharedTicketKeys } from './shared-ticket-keys.js'
import { TicketKeyBroker } from './ticket-key-broker.js'

/** A broker and two workers; `applied[w][listener]` is what each server last applied. */
function cluster() {
  const applied: Record<string, Buffer | undefined>[] = [{}, {}]
  const workers: SharedTicketKeys[] = []
  const broker = new TicketKeyBroker((listener, key) => workers.forEach((w) => w.receive(listener, key)))
  for (let i = 0; i < 2; i++) {
    const w: SharedTicketKeys = new SharedTicketKeys((listener, intervalMs) => w.receive(listener, broker.request(listener, intervalMs)))
    workers.push(w)
  }
  const source = (worker: number, listener: string) =>
    workers[worker]!.sourceFor(listener, { intervalMs: 3_600_000, apply: (key) => (applied[worker]![listener] = key) })
  return { applied, broker, source }
}

describe('shared ticket keys', () => {
  it('gives every worker the same 48-byte key per listener, and different listeners different keys', () => {
    const c = cluster()
    for (const w of [0, 1]) for (const l of ['a', 'b']) c.source(w, l).start()
    assert.equal(c.applied[0]!.a!.length, 48)
    assert.deepEqual(c.applied[1]!.a, c.applied[0]!.a)
    assert.deepEqual(c.applied[1]!.b, c.applied[0]!.b)
    assert.notDeepEqual(c.applied[0]!.a, c.applied[0]!.b)
    c.broker.stop()
  })

  it('applies a rotation in every worker, and the current key again after setSecureContext', () => {
    const c = cluster()
    const sources = [c.source(0, 'a'), c.source(1, 'a')]
    sources.forEach((s) => s.start())
    const first = c.applied[0]!.a
    c.broker.rotateAll()
    const second = c.applied[0]!.a
    assert.notDeepEqual(second, first)
    assert.deepEqual(c.applied[1]!.a, second)
    c.applied[0]!.a = undefined // as setSecureContext's random key would
    sources[0]!.onContextReplaced()
    assert.deepEqual(c.applied[0]!.a, second)
    c.broker.stop()
  })

  it('hands a starting worker the current key, and stops applying to a stopped listener', () => {
    const c = cluster()
    const old = c.source(0, 'a')
    old.start()
    const key = c.applied[0]!.a
    c.source(1, 'a').start()
    assert.deepEqual(c.applied[1]!.a, key, 'no new key for a second asker with the same interval')
    old.stop()
    c.broker.rotateAll()
    assert.deepEqual(c.applied[0]!.a, key, 'the stopped listener kept its last key')
    assert.notDeepEqual(c.applied[1]!.a, key)
    c.broker.stop()
  })

  it('restarts a listener rotation when a reload changes its interval', () => {
    const keys: Buffer[] = []
    const broker = new TicketKeyBroker((_l, key) => keys.push(key))
    const first = broker.request('a', 3_600_000)
    assert.deepEqual(broker.request('a', 3_600_000), first)
    const second = broker.request('a', 60_000)
    assert.notDeepEqual(second, first)
    assert.equal(keys.length, 2)
    assert.deepEqual(broker.current(), [['a', second]])
    broker.stop()
  })
})
