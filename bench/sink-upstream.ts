/**
 * The upload sink: reads a request body to its end and answers with the
 * byte count, so the bench can check that all 100 MB went through. nginx
 * cannot do this without spooling the body to disk, hence a Node process;
 * it serves only the streaming scenario, where one request a run is all it
 * sees. Run as its own process: `node sink-upstream.js <port>`.
 */
import { createServer } from 'node:http'

const port = Number(process.argv[2])
createServer((req, res) => {
  let bytes = 0
  req.on('data', (chunk: Buffer) => (bytes += chunk.length))
  req.on('end', () => res.end(`${bytes}\n`))
})
  .listen(port, '127.0.0.1')
