/**
 * A problem+json answer written straight to a socket, for errors Node's
 * HTTP/1.1 parser raises before a request object exists (malformed framing,
 * oversized headers, header timeout). The connection is closed after it:
 * once framing is in doubt, nothing more on it can be trusted.
 */
import type { Socket } from 'node:net'
import { reasons, type Denial } from '../shared/reasons.js'
import { problemType } from './reply.js'

const statusText: Record<number, string> = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }

/** Writes the denial and ends the socket; a no-op on a socket that is already gone. */
export function sendRawDenial(socket: Socket, denial: Denial): void {
  if (socket.destroyed || !socket.writable) {
    socket.destroy()
    return
  }
  // A response was already written on this connection (bytesWritten counts
  // application data, queued included): a parse error in bytes pipelined after
  // it must not produce a second, unsolicited response, which a front proxy
  // could hand to the next request. Flush what is queued and close.
  if (socket.bytesWritten > 0) {
    socket.end()
    socket.destroySoon?.()
    return
  }
  const { status, title } = reasons[denial.reason]
  const body = JSON.stringify({ type: problemType(denial.reason), title, status, reason: denial.reason })
  socket.end(
    `HTTP/1.1 ${status} ${statusText[status] ?? title}\r\n` +
      'content-type: application/problem+json\r\n' +
      'cache-control: no-store\r\n' +
      'connection: close\r\n' +
      `content-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  )
  socket.destroySoon?.()
}
