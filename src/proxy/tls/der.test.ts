import assert from 'node:assert/strict'
import { describe, it } from 'node:test'
import { DerError, DerReader, Tag, readBoolean, readOid, readTime } from './der.js'

const hex = (s: string) => Buffer.from(s.replace(/\s/g, ''), 'hex')

describe('DerReader', { timeout: 5_000 }, () => {
  it('reads short and long lengths and nested elements', () => {
    const body = Buffer.alloc(200, 0x41)
    const buf = Buffer.concat([hex('30 81 c8'), body])
    const r = new DerReader(buf)
    const seq = r.next(Tag.sequence)
    assert.equal(seq.end - seq.body, 200)
    r.finish()
  })

  it('refuses indefinite, non-minimal and overlong lengths', () => {
    assert.throws(() => new DerReader(hex('30 80 00 00')).next(), DerError)
    assert.throws(() => new DerReader(hex('04 81 05 0102030405')).next(), DerError) // 5 fits the short form
    assert.throws(() => new DerReader(hex('04 82 0005 0102030405')).next(), DerError)
    assert.throws(() => new DerReader(hex('04 85 0000000001 00')).next(), DerError)
  })

  it('refuses elements that overrun their container and trailing data', () => {
    assert.throws(() => new DerReader(hex('04 05 0102')).next(), DerError)
    const r = new DerReader(hex('05 00 05 00'))
    r.next()
    assert.throws(() => r.finish(), DerError)
  })

  it('refuses high tag numbers and a wrong expected tag', () => {
    assert.throws(() => new DerReader(hex('1f 81 00 00')).next(), DerError)
    assert.throws(() => new DerReader(hex('04 00')).next(Tag.sequence), DerError)
  })
})

describe('readOid', { timeout: 5_000 }, () => {
  it('decodes first-arc packing and multi-byte arcs (X.690 8.19)', () => {
    const r = new DerReader(hex('06 08 2b 06 01 05 05 07 03 02'))
    assert.equal(readOid(r.buf, r.next()), '1.3.6.1.5.5.7.3.2')
    const joint = new DerReader(hex('06 03 88 37 03')) // 2.999.3
    assert.equal(readOid(joint.buf, joint.next()), '2.999.3')
  })

  it('refuses non-minimal and truncated arcs', () => {
    const padded = new DerReader(hex('06 03 2b 80 01'))
    assert.throws(() => readOid(padded.buf, padded.next()), DerError)
    const cut = new DerReader(hex('06 02 2b 86'))
    assert.throws(() => readOid(cut.buf, cut.next()), DerError)
  })
})

describe('readBoolean', { timeout: 5_000 }, () => {
  it('accepts only the DER encodings 0x00 and 0xff', () => {
    const t = new DerReader(hex('01 01 ff'))
    assert.equal(readBoolean(t.buf, t.next()), true)
    const ber = new DerReader(hex('01 01 01'))
    assert.throws(() => readBoolean(ber.buf, ber.next()), DerError)
  })
})

describe('readTime', { timeout: 5_000 }, () => {
  const time = (tag: number, text: string) => {
    const buf = Buffer.concat([Buffer.from([tag, text.length]), Buffer.from(text, 'latin1')])
    return readTime(buf, new DerReader(buf).next())
  }

  it('maps UTCTime years below 50 to 20xx and others to 19xx (RFC 5280 4.1.2.5.1)', () => {
    assert.equal(time(Tag.utcTime, '491231235959Z'), Date.parse('2049-12-31T23:59:59Z'))
    assert.equal(time(Tag.utcTime, '500101000000Z'), Date.parse('1950-01-01T00:00:00Z'))
  })

  it('reads GeneralizedTime, including years before 100', () => {
    assert.equal(time(Tag.generalizedTime, '99991231235959Z'), Date.parse('9999-12-31T23:59:59Z'))
    assert.equal(new Date(time(Tag.generalizedTime, '00500101000000Z')).getUTCFullYear(), 50)
  })

  it('refuses fractions, offsets and impossible dates', () => {
    assert.throws(() => time(Tag.generalizedTime, '20250101000000.5Z'), DerError)
    assert.throws(() => time(Tag.utcTime, '250101000000+0100'), DerError)
    assert.throws(() => time(Tag.utcTime, '250230000000Z'), DerError)
    assert.throws(() => time(Tag.utcTime, '250101246000Z'), DerError)
  })
})
