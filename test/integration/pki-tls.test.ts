/**
 * Certificates from the CA in a real TLS handshake on loopback: a server
 * certificate and a client certificate, each verified by the peer against
 * the root alone (the holder sends the intermediate).
 */
import { strict as assert } from 'node:assert'
import type { AddressInfo } from 'node:net'
import { describe, it } from 'node:test'
import tls from 'node:tls'
import { issueCertificate } from '../../src/pki/ca-issue.js'
import { newCa } from './pki-helpers.js'

describe('TLS with CA-issued certificates', { timeout: 30_000 }, () => {
  it('completes mutual TLS with both sides authorized against the root', async () => {
    const { ca, clock } = await newCa()
    const rootPem = ca.root.toString('pem')
    const server = await issueCertificate(ca, { profile: 'server', subject: 'CN=localhost', sans: [{ type: 'dns', value: 'localhost' }, { type: 'ip', value: '127.0.0.1' }], plainKey: true, clock })
    const client = await issueCertificate(ca, { profile: 'client', subject: 'CN=orders, O=Acme', sans: [{ type: 'uri', value: 'spiffe://acme.test/orders' }], plainKey: true, clock })

    const srv = tls.createServer({
      key: server.keyPem,
      cert: server.certPem + ca.intermediate.toString('pem'),
      ca: rootPem,
      requestCert: true,
      rejectUnauthorized: true,
      minVersion: 'TLSv1.3',
    })
    const serverSide = new Promise<{ authorized: boolean; cn: unknown }>((resolve) => {
      srv.once('secureConnection', (socket) => {
        resolve({ authorized: socket.authorized, cn: socket.getPeerCertificate().subject?.CN })
        socket.end('hi')
      })
    })
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    try {
      const port = (srv.address() as AddressInfo).port
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: rootPem, key: client.keyPem, cert: client.certPem + ca.intermediate.toString('pem') })
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once('secureConnect', resolve)
          socket.once('error', reject)
        })
        assert.equal(socket.authorized, true, String(socket.authorizationError))
        assert.equal(socket.getPeerCertificate().subject.CN, 'localhost')
        const seen = await serverSide
        assert.equal(seen.authorized, true)
        assert.equal(seen.cn, 'orders')
      } finally {
        socket.destroy()
      }
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()))
    }
  })

  it('refuses a client whose certificate has only the server profile (EKU serverAuth)', async () => {
    const { ca, clock } = await newCa()
    const rootPem = ca.root.toString('pem')
    const server = await issueCertificate(ca, { profile: 'server', subject: 'CN=localhost', sans: [{ type: 'dns', value: 'localhost' }], plainKey: true, clock })
    const srv = tls.createServer({ key: server.keyPem, cert: server.certPem + ca.intermediate.toString('pem'), ca: rootPem, requestCert: true, rejectUnauthorized: true })
    srv.on('tlsClientError', () => undefined)
    srv.on('secureConnection', (socket) => socket.end('accepted')) // only reached if the client were accepted
    await new Promise<void>((resolve) => srv.listen(0, '127.0.0.1', resolve))
    try {
      const port = (srv.address() as AddressInfo).port
      const socket = tls.connect({ host: '127.0.0.1', port, servername: 'localhost', ca: rootPem, key: server.keyPem, cert: server.certPem + ca.intermediate.toString('pem') })
      const outcome = await new Promise<string>((resolve) => {
        socket.once('error', (err: NodeJS.ErrnoException) => resolve(err.code ?? 'error'))
        socket.once('data', () => resolve('data'))
        socket.once('close', () => resolve('closed'))
      })
      socket.destroy()
      assert.notEqual(outcome, 'data')
      assert.match(outcome, /^ERR_SSL_|^ECONNRESET$|^closed$/)
    } finally {
      await new Promise<void>((resolve) => srv.close(() => resolve()))
    }
  })
})
