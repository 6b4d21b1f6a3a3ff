import assert from 'node:assert/strict'
import { test } from 'node:test'
import { compileCidrs } from './cidr.js'

test('matches IPv4 blocks and single addresses', () => {
  const set = compileCidrs(['10.0.0.0/8', '192.168.1.7', '172.16.0.0/12', '0.0.0.0/32'])
  assert.equal(set.size, 4)
  for (const yes of ['10.0.0.0', '10.255.255.255', '192.168.1.7', '172.31.0.1', '0.0.0.0']) assert.equal(set.has(yes), true, yes)
  for (const no of ['11.0.0.0', '9.255.255.255', '192.168.1.8', '172.32.0.1', '1.1.1.1']) assert.equal(set.has(no), false, no)
})

test('matches IPv6 blocks, with and without a zone index', () => {
  const set = compileCidrs(['2001:db8::/32', '::1', 'fe80::/10'])
  for (const yes of ['2001:db8::1', '2001:db8:ffff::1', '::1', '0:0:0:0:0:0:0:1', 'fe80::1%eth0']) assert.equal(set.has(yes), true, yes)
  for (const no of ['2001:db9::1', '::2', '2001:db8']) assert.equal(set.has(no), false, no)
})

test('matches IPv4-mapped IPv6 peers against IPv4 blocks, and mapped blocks against IPv4 peers', () => {
  const v4 = compileCidrs(['10.0.0.0/8'])
  assert.equal(v4.has('::ffff:10.0.0.1'), true)
  assert.equal(v4.has('::ffff:a00:1'), true)
  assert.equal(v4.has('::FFFF:10.0.0.1'), true)
  assert.equal(v4.has('::ffff:11.0.0.1'), false)
  assert.equal(v4.has('::10.0.0.1'), false) // IPv4-compatible is not mapped
  assert.equal(v4.has('64:ff9b::10.0.0.1'), false) // NAT64 is a different address
  const mapped = compileCidrs(['::ffff:10.0.0.0/104'])
  assert.equal(mapped.has('10.0.0.1'), true)
  assert.equal(mapped.has('11.0.0.1'), false)
})

test('an empty list matches nothing and has size 0', () => {
  const set = compileCidrs([])
  assert.equal(set.size, 0)
  assert.equal(set.has('10.0.0.1'), false)
})

test('never matches something that is not an IP literal', () => {
  const set = compileCidrs(['0.0.0.0/0', '::/0'])
  for (const junk of ['', 'localhost', '10.0.0.1:80', '10.0.0', '[::1]', ' 10.0.0.1']) assert.equal(set.has(junk), false, junk)
  assert.equal(set.has('203.0.113.9'), true)
  assert.equal(set.has('2001:db8::1'), true)
})

test('throws on malformed entries', () => {
  for (const bad of ['10.0.0.0/33', '::/129', '10.0.0.0/', '10.0.0.0/8/8', 'example.com', '10.0.0.0/-1', '10.0.0.0/08a', 'fe80::1%eth0', '']) {
    assert.throws(() => compileCidrs([bad]), Error, bad)
  }
})
