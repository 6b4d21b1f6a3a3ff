/**
 * Opens many keep-alive TLS connections with a client certificate, sends one
 * request on each (so the proxy has set up everything a used connection
 * holds: identity, HTTP parser, pooled state), and then holds them idle until
 * stdin closes. Prints "READY <n>" when all are open and answered.
 *
 * Connections after the first resume its TLS session, so opening 10,000 takes
 * seconds rather than a minute of full handshakes; a resumed connection holds
 * the same state on the proxy as a full one. At most `parallel` handshakes
 * are in flight, so the proxy's accept queue never overflows.
 *
 * Run as its own process: node idle-connections.js <options.json>
 */
import { readFileSync } from 'node:fs'
import { connect, type TLSSocket } from 'node:tls'

export interface IdleConnectionsOptions {
  readonly port: number
  readonly count: number
  readonly parallel: number
  readonly cert: string
  readonly key: string
  readonly ca: string
}

async function main(opts: IdleConnectionsOptions): Promise<void> {
  const base = { host: '127.0.0.1', port: opts.port, servername: 'localhost', cert: readFileSync(opts.cert), key: readFileSync(opts.key), ca: readFileSync(opts.ca) }
  let session: Buffer | undefined
  const sockets: TLSSocket[] = []
  const open = () =>
    new Promise<void>((resolve, reject) => {
      const socket = connect({ ...base, session })
      socket.once('session', (s: Buffer) => (session ??= s))
      socket.once('error', reject)
      socket.once('secureConnect', () => socket.write('GET / HTTP/1.1\r\nHost: localhost\r\n\r\n'))
      let head = ''
      const onData = (d: Buffer) => {
        head += d.toString('latin1')
        if (!head.includes('\r\n\r\n')) return
        socket.off('data', onData)
        if (!head.startsWith('HTTP/1.1 200')) return reject(new Error(`unexpected answer: ${head.split('\r\n')[0]}`))
        sockets.push(socket)
        resolve()
      }
      socket.on('data', onData)
    })
  await open() // the first one gets the session the others resume
  await new Promise((r) => setTimeout(r, 50))
  let next = 1
  await Promise.all(
    Array.from({ length: opts.parallel }, async () => {
      while (next < opts.count) {
        next++
        await open()
      }
    }),
  )
  process.stdout.write(`READY ${sockets.length}\n`)
  process.stdin.resume()
  process.stdin.once('end', () => {
    for (const s of sockets) s.destroy()
    process.exit(0)
  })
}

main(JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as IdleConnectionsOptions).catch((err: unknown) => {
  process.stderr.write(`idle-connections: ${(err as Error).message}\n`)
  process.exit(1)
})
