import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ConfigError } from '../config/issues.js'
import { routeSchema } from '../config/schema/routes.js'
import { compileRouter, ROUTABLE_METHODS, type PathMatch, type Router, type RouterEntry } from './router.js'

type E = Partial<RouterEntry<string>> & { route: string; path: PathMatch }
const entry = (e: E): RouterEntry<string> => ({ listeners: [], hosts: [], methods: [], ...e })
const router = (list: E[]) => compileRouter(list.map(entry))

/** Route name, or reason code when denied. */
function outcome(r: Router<string>, host: string, method: string, path: string, listener = 'main'): string {
  const found = r.find(listener, host, method, path)
  return 'reason' in found ? found.reason : found.route
}

function configIssues(fn: () => unknown): ConfigError['issues'] {
  try {
    fn()
  } catch (err) {
    assert.ok(err instanceof ConfigError, String(err))
    return err.issues
  }
  assert.fail('expected a ConfigError')
}

test('prefers the exact host, then "*.suffix" (one label), then any host', () => {
  const r = router([
    { route: 'any', path: { prefix: '/' } },
    { route: 'wild', hosts: ['*.example.com'], path: { prefix: '/' } },
    { route: 'api', hosts: ['api.example.com'], path: { prefix: '/' } },
  ])
  const table: [string, string][] = [
    ['api.example.com', 'api'],
    ['api.example.com.', 'api'],
    ['www.example.com', 'wild'],
    ['a.b.example.com', 'any'],
    ['example.com', 'any'],
    ['other.org', 'any'],
    ['', 'any'],
  ]
  for (const [host, want] of table) assert.equal(outcome(r, host, 'GET', '/x'), want, host)
})

test('falls through to a less specific host tier when the specific one has no matching path', () => {
  const r = router([
    { route: 'api-admin', hosts: ['api.example.com'], path: { exact: '/admin' } },
    { route: 'wild-docs', hosts: ['*.example.com'], path: { prefix: '/docs' } },
    { route: 'any-health', path: { exact: '/health' } },
  ])
  assert.equal(outcome(r, 'api.example.com', 'GET', '/admin'), 'api-admin')
  assert.equal(outcome(r, 'api.example.com', 'GET', '/docs/x'), 'wild-docs')
  assert.equal(outcome(r, 'api.example.com', 'GET', '/health'), 'any-health')
  assert.equal(outcome(r, 'api.example.com', 'GET', '/other'), 'route_not_found')
  assert.equal(outcome(r, 'www.example.com', 'GET', '/admin'), 'route_not_found')
})

test('within a host: exact path, then patterns by static segments, then longest prefix', () => {
  const r = router([
    { route: 'prefix-root', path: { prefix: '/' } },
    { route: 'prefix-v1', path: { prefix: '/v1' } },
    { route: 'prefix-v1-orders', path: { prefix: '/v1/orders' } },
    { route: 'pattern-v1-res', path: { pattern: '/v1/:res' } },
    { route: 'exact-v1-orders', path: { exact: '/v1/orders' } },
    { route: 'pattern-orders-id', path: { pattern: '/v1/orders/:id' } },
    { route: 'pattern-x-items', path: { pattern: '/v1/:x/items' } },
    { route: 'pattern-a-b-c', path: { pattern: '/:a/b/c' } },
    { route: 'pattern-a-x-y', path: { pattern: '/a/:x/:y' } },
    { route: 'pattern-p-q-r', path: { pattern: '/:p/:q/r' } },
  ])
  const table: [string, string][] = [
    ['/v1/orders', 'exact-v1-orders'], // exact beats pattern and prefix
    ['/v1/users', 'pattern-v1-res'], // pattern beats prefix
    ['/v1/orders/items', 'pattern-orders-id'], // equal statics: static first at the first difference
    ['/v1/users/items', 'pattern-x-items'],
    ['/a/b/c', 'pattern-a-b-c'], // two static segments beat one (find-my-way would pick /a/:x/:y)
    ['/a/z/r', 'pattern-a-x-y'], // one static each: static first at position 0
    ['/z/z/r', 'pattern-p-q-r'],
    ['/v1/orders/7/x', 'prefix-v1-orders'], // no pattern has 4 segments: longest prefix
    ['/v1/x/y/z', 'prefix-v1'],
    ['/v1', 'prefix-v1'],
    ['/v1x', 'prefix-root'], // prefixes match at segment boundaries only
    ['/v1/ordersx', 'pattern-v1-res'],
    ['/', 'prefix-root'],
  ]
  for (const [path, want] of table) assert.equal(outcome(r, 'h', 'GET', path), want, path)
})

test('matches a prefix at segment boundaries, and a "/"-terminated prefix only below it', () => {
  const r = router([
    { route: 'api', path: { prefix: '/api' } },
    { route: 'static', path: { prefix: '/static/' } },
  ])
  assert.equal(outcome(r, 'h', 'GET', '/api'), 'api')
  assert.equal(outcome(r, 'h', 'GET', '/api/'), 'api')
  assert.equal(outcome(r, 'h', 'GET', '/api/x/y'), 'api')
  assert.equal(outcome(r, 'h', 'GET', '/apix'), 'route_not_found')
  assert.equal(outcome(r, 'h', 'GET', '/static/a.css'), 'static')
  assert.equal(outcome(r, 'h', 'GET', '/static'), 'route_not_found')
})

test('captures pattern parameters as they appear in the normalised path', () => {
  const r = router([{ route: 'items', path: { pattern: '/orders/:id/items/:item' } }])
  const found = r.find('main', 'h', 'GET', '/orders/a%2Fb/items/42')
  assert.ok(!('reason' in found))
  assert.deepEqual(found.params, { id: 'a%2Fb', item: '42' })
  assert.equal(outcome(r, 'h', 'GET', '/orders//items/42'), 'route_not_found') // empty segment is no parameter
  assert.equal(outcome(r, 'h', 'GET', '/orders/1/items/42/'), 'route_not_found') // trailing slash is significant
  assert.equal(outcome(r, 'h', 'GET', '/orders/1/items'), 'route_not_found')
})

test('answers 405 with Allow when host and path match but no route takes the method', () => {
  const r = router([
    { route: 'read', path: { exact: '/doc' }, methods: ['GET', 'HEAD'] },
    { route: 'write', path: { pattern: '/:name' }, methods: ['PUT'] },
  ])
  const denied = r.find('main', 'h', 'DELETE', '/doc')
  assert.ok('reason' in denied)
  assert.equal(denied.reason, 'method_not_allowed')
  assert.deepEqual(denied.headers, { allow: 'GET, HEAD, PUT' })
  assert.equal(outcome(r, 'h', 'PUT', '/doc'), 'write') // the method is a match condition: the pattern takes PUT
  assert.equal(outcome(r, 'h', 'HEAD', '/doc'), 'read')
  assert.equal(outcome(r, 'h', 'get', '/doc'), 'method_not_allowed') // methods are case-sensitive
  assert.equal(outcome(r, 'h', 'GET', '/a/b'), 'route_not_found')
})

test('routes with methods [] take the seven routable methods and never TRACE or CONNECT', () => {
  const r = router([{ route: 'all', path: { prefix: '/' } }])
  for (const m of ROUTABLE_METHODS) assert.equal(outcome(r, 'h', m, '/x'), 'all', m)
  for (const m of ['TRACE', 'CONNECT', 'PROPFIND', 'BREW']) {
    const denied = r.find('main', 'h', m, '/x')
    assert.ok('reason' in denied && denied.reason === 'method_not_allowed', m)
    assert.equal(denied.headers?.allow, 'GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS')
  }
})

test('ROUTABLE_METHODS is exactly the routes schema method enum', () => {
  const schemaMethods = routeSchema.shape.match.shape.methods.unwrap().element.options
  assert.deepEqual([...ROUTABLE_METHODS], [...schemaMethods])
})

test('serves a route only on its listeners; [] means every listener', () => {
  const r = router([
    { route: 'internal', listeners: ['internal'], path: { prefix: '/admin' } },
    { route: 'everywhere', path: { prefix: '/' } },
  ])
  assert.equal(outcome(r, 'h', 'GET', '/admin', 'internal'), 'internal')
  assert.equal(outcome(r, 'h', 'GET', '/admin', 'public'), 'everywhere')
  assert.equal(outcome(r, 'h', 'GET', '/admin', 'unknown-listener'), 'everywhere')
})

test('answers route_not_found from an empty router', () => {
  assert.equal(outcome(compileRouter<string>([]), 'h', 'GET', '/'), 'route_not_found')
})

test('returns the same frozen result for a repeated static match (no allocation)', () => {
  const r = router([{ route: 'a', path: { exact: '/a' } }])
  const first = r.find('main', 'h', 'GET', '/a')
  assert.equal(r.find('main', 'h', 'GET', '/a'), first)
  assert.ok(Object.isFrozen(first))
  assert.equal(r.find('main', 'h', 'GET', '/b'), r.find('main', 'x', 'POST', '/c'))
})

test('refuses two routes that match the same requests, naming both indexes', () => {
  const cases: [string, E[]][] = [
    ['identical', [{ route: 'a', path: { prefix: '/x' } }, { route: 'b', path: { prefix: '/x' } }]],
    ['[] overlaps [GET]', [{ route: 'a', path: { exact: '/x' } }, { route: 'b', path: { exact: '/x' }, methods: ['GET'] }]],
    ['overlapping methods', [{ route: 'a', path: { exact: '/x' }, methods: ['GET', 'POST'] }, { route: 'b', path: { exact: '/x' }, methods: ['POST'] }]],
    ['same pattern shape', [{ route: 'a', path: { pattern: '/o/:id' } }, { route: 'b', path: { pattern: '/o/:orderId' } }]],
    ['pattern without parameters = exact', [{ route: 'a', path: { exact: '/o' } }, { route: 'b', path: { pattern: '/o' } }]],
    ['shared host', [{ route: 'a', hosts: ['a.test', 'b.test'], path: { prefix: '/' } }, { route: 'b', hosts: ['b.test'], path: { prefix: '/' } }]],
    ['all listeners and one', [{ route: 'a', path: { prefix: '/' } }, { route: 'b', listeners: ['l1'], path: { prefix: '/' } }]],
  ]
  for (const [name, list] of cases) {
    const issues = configIssues(() => router(list))
    assert.equal(issues.length, 1, name)
    assert.deepEqual(issues[0]!.path, ['routes', 1], name)
    assert.match(issues[0]!.message, /\b0\b.*\b1\b/, name)
  }
})

test('uses the configured route index in conflict paths', () => {
  const issues = configIssues(() =>
    compileRouter([entry({ route: 'a', path: { prefix: '/' }, index: 3 }), entry({ route: 'b', path: { prefix: '/' }, index: 7 })]),
  )
  assert.deepEqual(issues[0]!.path, ['routes', 7])
})

test('accepts routes that differ in method, host, listener or matcher kind', () => {
  router([
    { route: 'get', path: { exact: '/x' }, methods: ['GET'] },
    { route: 'post', path: { exact: '/x' }, methods: ['POST'] },
    { route: 'host', hosts: ['a.test'], path: { exact: '/x' } },
    { route: 'wild', hosts: ['*.a.test'], path: { exact: '/x' } },
    { route: 'l1', listeners: ['l1'], path: { exact: '/y' } },
    { route: 'l2', listeners: ['l2'], path: { exact: '/y' } },
    { route: 'prefix', path: { prefix: '/x' } },
    { route: 'pattern', path: { pattern: '/:x' } },
  ])
})

test('refuses configured paths, patterns, hosts and methods that could never match', () => {
  const bad: [E, (string | number)[]][] = [
    [{ route: 'a', path: { exact: '/a/../b' } }, ['routes', 0, 'match', 'path', 'exact']],
    [{ route: 'a', path: { prefix: '/a/%7e' } }, ['routes', 0, 'match', 'path', 'prefix']],
    [{ route: 'a', path: { exact: '/a?x=1' } }, ['routes', 0, 'match', 'path', 'exact']],
    [{ route: 'a', path: { exact: '/a|b' } }, ['routes', 0, 'match', 'path', 'exact']],
    [{ route: 'a', path: { pattern: '/o/:1id' } }, ['routes', 0, 'match', 'path', 'pattern']],
    [{ route: 'a', path: { pattern: '/o/:id/:id' } }, ['routes', 0, 'match', 'path', 'pattern']],
    [{ route: 'a', path: { pattern: '/o/:__proto__' } }, ['routes', 0, 'match', 'path', 'pattern']],
    [{ route: 'a', path: { prefix: '/' }, methods: ['TRACE'] }, ['routes', 0, 'match', 'methods']],
    [{ route: 'a', path: { prefix: '/' }, hosts: ['a.*.test'] }, ['routes', 0, 'match', 'hosts']],
  ]
  for (const [e, path] of bad) {
    const issues = configIssues(() => router([e]))
    assert.deepEqual(issues[0]!.path, path, JSON.stringify(e))
  }
})
