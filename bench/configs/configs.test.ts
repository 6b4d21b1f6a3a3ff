/**
 * The generated configs are checked by the programs that will run them:
 * Portcullis's config starts a real gateway (harness) whose two routes are
 * what the bench says they are; nginx's and HAProxy's pass `nginx -t` and
 * `haproxy -c` (skipped where those are not installed: scripts/setup-bench.sh).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { after, before, test } from 'node:test'
import { send, waitFor } from '../../test/harness/client.js'
import { startGateway } from '../../test/harness/gateway.js'
import { startUpstream, type TestUpstream } from '../../test/harness/upstream.js'
import { makeBenchPki } from '../pki.js'
import type { Topology } from '../topology.js'
import { renderHaproxyConfig } from './haproxy-config.js'
import { renderNginxConfig } from './nginx-config.js'
import { renderPortcullisConfig } from './portcullis-config.js'
import { renderUpstreamConfig, smallBody } from './upstream-config.js'

const has = (tool: string) => {
  try {
    execFileSync('sh', ['-c', `command -v ${tool}`], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

let topo: Topology
let upstream: TestUpstream
before(async () => {
  upstream = await startUpstream()
  const dir = mkdtempSync(join(tmpdir(), 'bench-configs-'))
  const ports = { ec: 0, rsa: 0 }
  topo = {
    dir, pki: { ec: makeBenchPki(dir, 'ec'), rsa: makeBenchPki(dir, 'rsa') }, upstreamPort: upstream.port, sinkPort: upstream.port, idleConnections: 9500,
    ports: { portcullis: ports, 'portcullis-cluster': ports, nginx: { ec: 18443, rsa: 18444 }, haproxy: { ec: 18445, rsa: 18446 }, naive: ports },
  }
})
after(() => upstream.close())

test('the Portcullis config starts; the full route sends the client certificate upstream, the bare route does not', async () => {
  const gw = await startGateway({ yaml: renderPortcullisConfig(topo, topo.ports.portcullis, 'portcullis'), dir: topo.dir })
  try {
    for (const keyType of ['ec', 'rsa'] as const) {
      const pki = topo.pki[keyType]
      const client = { port: gw.port(keyType), ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey }
      assert.equal((await send({ ...client, path: '/' })).status, 200)
      assert.equal((await send({ ...client, path: '/bare' })).status, 200)
    }
    const [full, bare] = upstream.requests.slice(-2)
    assert.ok(full!.headers['client-cert'], 'full pipeline: Client-Cert sent')
    assert.equal(bare!.headers['client-cert'], undefined, 'bare route: no Client-Cert')
  } finally {
    await gw.close()
  }
  // The access log goes to the configured file, as with nginx's and HAProxy's; it is written asynchronously.
  const routes = () => {
    try {
      return readFileSync(join(topo.dir, 'portcullis-access.log'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as { route: string }).route)
    } catch {
      return []
    }
  }
  await waitFor(() => routes().length >= 4)
  assert.deepEqual(routes().slice(-2), ['full', 'bare'])
})

test('the full route admits only the named identities', async () => {
  const other = makeBenchPki(mkdtempSync(join(tmpdir(), 'bench-other-')), 'ec')
  // The listener trusts the bench CA only; a certificate from it with another SPIFFE id is a stranger to `full`.
  const yaml = renderPortcullisConfig({ ...topo, pki: { ...topo.pki, ec: { ...topo.pki.ec, clientSpiffeId: 'spiffe://bench.portcullis/someone-else' } } }, topo.ports.portcullis, 'portcullis')
  const gw = await startGateway({ yaml, dir: topo.dir })
  try {
    const pki = topo.pki.ec
    const client = { port: gw.port('ec'), ca: pki.caCert, cert: pki.clientCert, key: pki.clientKey }
    assert.equal((await send({ ...client, path: '/' })).status, 403)
    assert.equal((await send({ ...client, path: '/bare' })).status, 200)
    await assert.rejects(send({ port: gw.port('ec'), ca: pki.caCert, cert: other.clientCert, key: other.clientKey, path: '/bare' }))
  } finally {
    await gw.close()
  }
})

test('the nginx proxy config passes nginx -t', { skip: !has('nginx') && 'nginx is not installed (scripts/setup-bench.sh)' }, () => {
  const file = join(topo.dir, 'nginx.conf')
  writeFileSync(file, renderNginxConfig(topo, 20000))
  execFileSync('nginx', ['-t', '-q', '-c', file], { stdio: 'pipe' })
})

test('the upstream config passes nginx -t and answers exactly 64 bytes', { skip: !has('nginx') && 'nginx is not installed (scripts/setup-bench.sh)' }, () => {
  assert.equal(Buffer.byteLength(smallBody), 64)
  const file = join(topo.dir, 'upstream.conf')
  const text = renderUpstreamConfig(topo, join(topo.dir, 'download.bin'))
  assert.ok(text.includes(`return 200 "${smallBody.trimEnd()}\\n";`))
  writeFileSync(file, text)
  execFileSync('nginx', ['-t', '-q', '-c', file], { stdio: 'pipe' })
})

test('the HAProxy config passes haproxy -c', { skip: !has('haproxy') && 'haproxy is not installed (scripts/setup-bench.sh)' }, () => {
  const file = join(topo.dir, 'haproxy.cfg')
  writeFileSync(file, renderHaproxyConfig(topo, 20000))
  execFileSync('haproxy', ['-c', '-q', '-f', file], { stdio: 'pipe' })
})
