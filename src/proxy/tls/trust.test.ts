import assert from 'node:assert/strict'
import { X509Certificate } from 'node:crypto'
import { describe, it } from 'node:test'
import { TestPki, pem } from '../../../test/harness/pki.js'
import { readCertFields } from './cert-fields.js'
import { IntermediatePool, TrustGroup, buildPath, parseCertificate } from './trust.js'

const pki = new TestPki()
const root = pki.root('tr-root')
const int1 = pki.intermediate('tr-int1', root, 1)
const int2 = pki.intermediate('tr-int2', int1)
const leaf = pki.client('tr-leaf', int2)
const parsed = (path: string) => parseCertificate(new X509Certificate(pem(path)).raw)
const leafLink = { fields: readCertFields(new X509Certificate(pem(leaf.cert)).raw) }

describe('buildPath', { timeout: 20_000 }, () => {
  const group = new TrustGroup([parsed(root.cert)], [pem(root.cert)])
  const presented = [parsed(int2.cert), parsed(int1.cert)]

  it('walks leaf → presented intermediates → anchor, counting CAs above the leaf', () => {
    const r = buildPath(leafLink, group, () => presented, new IntermediatePool(), 3)
    assert.ok(r.ok)
    assert.deepEqual(r.cas.map((c) => c.fields.subject.fields.CN?.[0]), ['tr-int2', 'tr-int1', 'tr-root'])
  })

  it('reports too_long when the path needs more CAs than maxDepth', () => {
    const r = buildPath(leafLink, group, () => presented, new IntermediatePool(), 2)
    assert.equal(!r.ok && r.problem, 'too_long')
  })

  it('uses pooled intermediates without asking for the presented chain', () => {
    const pool = new IntermediatePool()
    for (const c of presented) pool.add(c)
    const r = buildPath(leafLink, group, () => assert.fail('presented chain fetched'), pool, 3)
    assert.ok(r.ok)
  })

  it('reports the DN where the walk stopped when no anchor is reachable', () => {
    const r = buildPath(leafLink, group, () => [presented[0]!], new IntermediatePool(), 3)
    assert.deepEqual(r, { ok: false, problem: 'unknown_ca', issuer: 'O=Portcullis Test,CN=tr-int1', isSelfSigned: false })
  })
})

describe('IntermediatePool', { timeout: 20_000 }, () => {
  it('drops the oldest entry when full and keeps its subject index consistent', () => {
    const pool = new IntermediatePool(2)
    const [a, b, c] = [parsed(int1.cert), parsed(int2.cert), parsed(root.cert)]
    pool.add(a)
    pool.add(b)
    pool.add(a) // already there: no change in order
    pool.add(c)
    assert.equal(pool.size, 2)
    assert.equal(pool.get(a.fingerprint), undefined)
    assert.deepEqual(pool.issuersOf(a.fields.subject.text), [])
    assert.deepEqual(pool.issuersOf(b.fields.subject.text), [b])
    assert.deepEqual(pool.issuersOf(c.fields.subject.text), [c])
  })
})
