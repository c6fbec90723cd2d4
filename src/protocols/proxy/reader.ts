import type net from 'node:net'
import { V2_DEFAULT_MAX_BYTES, type ProxyHeader } from './header.js'
import { parse } from './parse.js'
import { ProxyProtocolError } from './proxy-protocol-error.js'

/** Options for {@link readProxyHeader}. */
export interface ReadProxyHeaderOptions {
  /** The whole header must arrive within this many milliseconds of the call (default 5000). */
  readonly timeoutMs?: number
  /** Largest v2 header accepted, fixed part included (default 4096; see {@link parse}). v1 is limited to 107 bytes. */
  readonly maxBytes?: number
}

/** A header read from a socket, and what came after it in the same reads. */
export interface ProxyHeaderRead {
  readonly header: ProxyHeader
  /** Bytes received after the header. They belong to the proxied stream: `socket.unshift(rest)` or forward them. */
  readonly rest: Buffer
}

/**
 * Reads a PROXY protocol header (v1 or v2) from the start of `socket`, which must not have had its encoding set.
 *
 * It resumes the socket, feeds each chunk to {@link parse}, and on every way out pauses the socket again, clears
 * its timer and removes every listener it added. It never destroys the socket: the caller owns it, and should destroy
 * it when this rejects. Until it settles it handles the socket's `'error'` events; the caller needs its own listener
 * for errors after that.
 *
 * @returns the header and the bytes after it (see {@link ProxyHeaderRead.rest}).
 * @throws ProxyProtocolError (code `TCPTEE_ERR_PROXY_PROTOCOL`): the parser's reasons for malformed bytes,
 *   `timeout`, or `closed` when the socket ends, closes or fails first (the socket error is the `cause`).
 */
export async function readProxyHeader (socket: net.Socket, options: ReadProxyHeaderOptions = {}): Promise<ProxyHeaderRead> {
  const { timeoutMs = 5000, maxBytes = V2_DEFAULT_MAX_BYTES } = options
  if (socket.readableEncoding !== null) throw new TypeError('readProxyHeader: the socket has an encoding set; it must deliver Buffers')
  if (socket.destroyed || socket.readableEnded) throw new ProxyProtocolError('closed', 'PROXY header: the socket was closed before the header arrived')
  parse(Buffer.alloc(0), { maxV2Bytes: maxBytes })  // throws RangeError for a bad maxBytes before any listener is added

  return await new Promise<ProxyHeaderRead>((resolve, reject) => {
    let received: Buffer = Buffer.alloc(0)

    function cleanup (): void {
      clearTimeout(timer)
      socket.pause()
      socket.removeListener('data', socketOnData)
      socket.removeListener('end', socketOnEnd)
      socket.removeListener('close', socketOnClose)
      socket.removeListener('error', socketOnError)
    }
    function fail (err: unknown): void {
      cleanup()
      reject(err)
    }
    function socketOnData (chunk: Buffer): void {
      received = received.length === 0 ? chunk : Buffer.concat([received, chunk])
      let result
      try {
        result = parse(received, { maxV2Bytes: maxBytes })
      } catch (err) {
        fail(err)
        return
      }
      if (result.state === 'need-more') return
      cleanup()
      resolve({ header: result.header, rest: received.subarray(result.consumed) })
    }
    function socketOnEnd (): void {
      fail(new ProxyProtocolError('closed', `PROXY header: the peer ended the stream after ${received.length} bytes, before a complete header`))
    }
    function socketOnClose (): void {
      fail(new ProxyProtocolError('closed', `PROXY header: the socket closed after ${received.length} bytes, before a complete header`))
    }
    function socketOnError (err: Error): void {
      fail(new ProxyProtocolError('closed', `PROXY header: socket error before a complete header: ${err.message}`, { cause: err }))
    }
    function onTimeout (): void {
      fail(new ProxyProtocolError('timeout', `PROXY header: no complete header within ${timeoutMs} ms (${received.length} bytes received)`))
    }

    const timer = setTimeout(onTimeout, timeoutMs)
    socket.on('data', socketOnData)
    socket.on('end', socketOnEnd)
    socket.on('close', socketOnClose)
    socket.on('error', socketOnError)
    socket.resume()
  })
}
