import assert from 'node:assert/strict'
import { test } from 'node:test'
import { normalizePath, type PathOptions } from './path.js'

const strict: PathOptions = { encodedSlash: 'reject', mergeSlashes: true }
const keep: PathOptions = { encodedSlash: 'keep', mergeSlashes: true }
const noMerge: PathOptions = { encodedSlash: 'reject', mergeSlashes: false }

/** [input, expected path or reason, options] */
const vectors: readonly (readonly [string, string, PathOptions?])[] = [
  // Clean paths pass unchanged
  ['/', '/'],
  ['/api/v1/orders', '/api/v1/orders'],
  ['/a/', '/a/'],
  ['/.well-known/jwks.json', '/.well-known/jwks.json'],
  ['/a/.../b', '/a/.../b'],
  ['/a/..b/c', '/a/..b/c'],
  ["/a/!$&'()*+,;=:@-._~", "/a/!$&'()*+,;=:@-._~"],
  // Dot segments (RFC 3986 §5.2.4)
  ['/a/./b/../c', '/a/c'],
  ['/a/b/c/./../../g', '/a/g'],
  ['/a/.', '/a/'],
  ['/a/..', '/'],
  ['/a/b/..', '/a/'],
  ['/./a', '/a'],
  ['/.', '/'],
  // Encoded dots are dots (decoded first: "." is unreserved)
  ['/a/%2e%2E/b', '/b'],
  ['/api/.%2e/x', '/x'],
  ['/api/%2e/x', '/api/x'],
  ['/%2e%2e/', 'invalid_path'],
  // Above the root: refused
  ['/../x', 'invalid_path'],
  ['/a/../../x', 'invalid_path'],
  ['/..', 'invalid_path'],
  // Tomcat/Jetty path-parameter tricks
  ['/api/..;/admin', 'invalid_path'],
  ['/api/..;jsessionid=1/admin', 'invalid_path'],
  ['/api/.;/admin', 'invalid_path'],
  ['/api/%2e%2e;/admin', 'invalid_path'],
  ['/api/..%3b/admin', 'invalid_path'],
  ['/api/x;y/z', '/api/x;y/z'],
  // Double encoding is decoded exactly once
  ['/api/%252e%252e/', '/api/%252e%252e/'],
  ['/api/%252E%252E/x', '/api/%252E%252E/x'],
  ['/api/%25', '/api/%25'],
  // Unreserved decoded, others uppercased
  ['/%41%62%7e%2D%5f', '/Ab~-_'],
  ['/a%3fb', '/a%3Fb'],
  ['/caf%c3%a9', '/caf%C3%A9'],
  ['/%F0%9F%98%80', '/%F0%9F%98%80'],
  ['/a%20b', '/a%20b'],
  // Re-encoded raw printable ASCII not allowed by RFC 3986
  ['/a|b', '/a%7Cb'],
  ['/x/[0]', '/x/%5B0%5D'],
  ['/{a}^`"<>', '/%7Ba%7D%5E%60%22%3C%3E'],
  // Slashes
  ['//admin', '/admin'],
  ['/a//b///c', '/a/b/c'],
  ['/a//', '/a/'],
  ['/a//../b', '/b'],
  ['//admin', '//admin', noMerge],
  ['/a//b', '/a//b', noMerge],
  ['/a//../b', '/a/b', noMerge],
  // Encoded separators
  ['/a%2fb', 'invalid_path'],
  ['/a%5Cb', 'invalid_path'],
  ['/a%2fb', '/a%2Fb', keep],
  ['/a%5cb', '/a%5Cb', keep],
  ['/a/..%2f..%2fetc', '/a/..%2F..%2Fetc', keep],
  // Never valid
  ['/a\\b', 'invalid_path'],
  ['/a\\..\\b', 'invalid_path'],
  ['/a%00b', 'invalid_path'],
  ['/a%0d%0aSet-Cookie:x', 'invalid_path'],
  ['/a%7f', 'invalid_path'],
  ['/a\x00b', 'invalid_path'],
  ['/a\tb', 'invalid_path'],
  ['/a b', 'invalid_path'],
  ['/a\x7fb', 'invalid_path'],
  ['/caf\u00e9', 'invalid_path'],
  ['/\u2215etc', 'invalid_path'],
  ['/a#frag', 'invalid_path'],
  ['/a%', 'invalid_path'],
  ['/a%2', 'invalid_path'],
  ['/a%zz', 'invalid_path'],
  ['/a%2g/b', 'invalid_path'],
  // Malformed UTF-8 in escapes
  ['/%c0%ae%c0%ae/', 'invalid_path'],
  ['/%c0%af', 'invalid_path'],
  ['/%e0%80%af', 'invalid_path'],
  ['/%ed%a0%80', 'invalid_path'],
  ['/%f4%90%80%80', 'invalid_path'],
  ['/%80', 'invalid_path'],
  ['/%c3', 'invalid_path'],
  ['/%c3a', 'invalid_path'],
  ['/%c3/%a9', 'invalid_path'],
  ['/%ff', 'invalid_path'],
  // Target forms
  ['', 'invalid_path'],
  ['*', 'invalid_path'],
  ['http://evil.example/admin', 'invalid_path'],
  ['example.com:443', 'invalid_path'],
  ['api/x', 'invalid_path'],
]

test('normalises and refuses the path vectors', () => {
  for (const [input, expected, opts] of vectors) {
    const out = normalizePath(input, opts ?? strict)
    if (expected === 'invalid_path' || expected === 'uri_too_long') {
      assert.ok('reason' in out, `${JSON.stringify(input)} should be refused, got ${JSON.stringify(out)}`)
      assert.equal(out.reason, expected, JSON.stringify(input))
    } else {
      assert.ok(!('reason' in out), `${JSON.stringify(input)} refused: ${JSON.stringify(out)}`)
      assert.equal(out.path, expected, JSON.stringify(input))
    }
  }
})

test('splits the query at the first "?" and passes it through byte-for-byte', () => {
  assert.deepEqual(normalizePath('/a/../b?x=%2e%2E&y=/../z?w', strict), { path: '/b', query: 'x=%2e%2E&y=/../z?w' })
  assert.deepEqual(normalizePath('/a?', strict), { path: '/a', query: '' })
  assert.deepEqual(normalizePath('/a', strict), { path: '/a', query: '' })
  assert.deepEqual(normalizePath('/?q=%zz', strict), { path: '/', query: 'q=%zz' })
})

test('refuses controls, space, non-ASCII and fragments in the query', () => {
  for (const bad of ['/a?x=1\r\nHost: evil', '/a?x y', '/a?x=\u00e9', '/a?x#f', '/a?\x7f']) {
    const out = normalizePath(bad, strict)
    assert.ok('reason' in out && out.reason === 'invalid_path', JSON.stringify(bad))
  }
})

test('answers uri_too_long past maxLength, counting path and query', () => {
  const opts = { ...strict, maxLength: 10 }
  assert.ok(!('reason' in normalizePath('/abc?12345', opts)))
  const out = normalizePath('/abc?123456', opts)
  assert.ok('reason' in out && out.reason === 'uri_too_long')
})

/** RFC 3986 §5.2.4 exactly as written (input buffer / output buffer), as an independent reference. */
function removeDotSegments(input: string): string {
  let out = ''
  while (input.length > 0) {
    if (input.startsWith('../')) input = input.slice(3)
    else if (input.startsWith('./')) input = input.slice(2)
    else if (input.startsWith('/./')) input = input.slice(2)
    else if (input === '/.') input = '/'
    else if (input.startsWith('/../')) {
      input = input.slice(3)
      out = out.slice(0, Math.max(0, out.lastIndexOf('/')))
    } else if (input === '/..') {
      input = '/'
      out = out.slice(0, Math.max(0, out.lastIndexOf('/')))
    } else if (input === '.' || input === '..') input = ''
    else {
      const next = input.indexOf('/', 1)
      const seg = next < 0 ? input : input.slice(0, next)
      out += seg
      input = input.slice(seg.length)
    }
  }
  return out
}

/** Seeded PRNG (mulberry32) so failures reproduce. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const pieces = ['/', '/', '/', '.', '.', '..', 'a', 'b', '%2e', '%2E', '%2f', '%25', '%41', '%c3%a9', ';', '|', '~', 'x', '%', '\\', '%3B', '%00']

function randomPath(next: () => number): string {
  let s = '/'
  const n = 1 + Math.floor(next() * 10)
  for (let i = 0; i < n; i++) s += pieces[Math.floor(next() * pieces.length)]!
  return s
}

test('property: output is canonical and normalisation is idempotent (20k random paths)', () => {
  const next = rng(42)
  const options = [strict, keep, noMerge, { encodedSlash: 'keep', mergeSlashes: false } as const]
  let accepted = 0
  for (let i = 0; i < 20_000; i++) {
    const input = randomPath(next)
    const opts = options[i % options.length]!
    const out = normalizePath(input, opts)
    if ('reason' in out) {
      assert.equal(out.reason, 'invalid_path', input)
      continue
    }
    accepted++
    const p = out.path
    assert.ok(p.startsWith('/'), input)
    // Idempotent: the canonical form is a fixed point.
    assert.deepEqual(normalizePath(p, opts), { path: p, query: '' }, `${input} -> ${p}`)
    // No dot segments survive, in any spelling.
    assert.ok(!p.split('/').some((s) => s === '.' || s === '..'), `${input} -> ${p}`)
    // Only canonical escapes: uppercase, never an unreserved character.
    for (const m of p.matchAll(/%(..)/g)) {
      assert.match(m[1]!, /^[0-9A-F]{2}$/, `${input} -> ${p}`)
      assert.doesNotMatch(String.fromCharCode(parseInt(m[1]!, 16)), /[A-Za-z0-9\-._~]/, `${input} -> ${p}`)
    }
    assert.match(p, /^[A-Za-z0-9\-._~!$&'()*+,;=:@/%]*$/, `${input} -> ${p}`)
    if (opts.mergeSlashes) assert.ok(!p.includes('//'), `${input} -> ${p}`)
    if (opts.encodedSlash === 'reject') assert.ok(!/%2F|%5C/.test(p), `${input} -> ${p}`)
  }
  assert.ok(accepted > 2_000, `only ${accepted} accepted: generator too hostile`)
})

test('property: dot removal agrees with the RFC 3986 §5.2.4 reference algorithm', () => {
  const next = rng(7)
  const plain = ['/', '/', '.', '..', 'a', 'bc', '...']
  let compared = 0
  for (let i = 0; i < 20_000; i++) {
    let input = '/'
    const n = 1 + Math.floor(next() * 12)
    for (let k = 0; k < n; k++) input += plain[Math.floor(next() * plain.length)]!
    const out = normalizePath(input, noMerge)
    if ('reason' in out) {
      // Refused only when the path climbs above the root (where the reference clamps).
      assert.equal(out.reason, 'invalid_path')
      let depth = 0
      let climbs = false
      for (const seg of input.slice(1).split('/')) {
        if (seg === '..') {
          if (depth === 0) climbs = true
          depth = Math.max(0, depth - 1)
        } else if (seg !== '.') depth++
      }
      assert.ok(climbs, input)
      continue
    }
    compared++
    assert.equal(out.path, removeDotSegments(input), input)
  }
  assert.ok(compared > 5_000)
})
