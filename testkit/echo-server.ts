// The test server behind `tcptee-testserver`: a TCP server with three modes.
//
//   echo   every '\n'-terminated line is written back as soon as it is complete
//          (goduplicator's test server does the same). Reading pauses while the
//          reply cannot be written, so a client that never reads its replies
//          eventually stops us reading too, exactly like a real server.
//   sink   reads and discards everything, never replies; answers the client's
//          FIN with its own, so a client can tell that every byte was read.
//   stall  accepts and never reads (pauseOnConnect); the client's writes back up.
//
// The server owns its connections: close() stops accepting and destroys them.
import net from 'node:net'
import { once } from 'node:events'
import type { Address as Endpoint } from '../src/net/address.js'

export type TestServerMode = 'echo' | 'sink' | 'stall'

export interface TestServerOptions {
  /** Default 'echo'. */
  mode?: TestServerMode
  /**
   * Echo mode: a line longer than this is echoed in pieces instead of being
   * held until its '\n' arrives, so memory stays bounded. Default 1 MiB.
   */
  maxLineBytes?: number
}

/** Cumulative counters; sample twice and subtract for rates. */
export interface TestServerStats {
  /** Open connections right now. */
  connections: number
  /** Connections accepted since start. */
  accepted: number
  /** '\n' bytes received (echo and sink modes); "requests" for ping-pong. */
  requests: number
  bytesIn: number
  bytesOut: number
  /** Socket errors seen (ECONNRESET and the like). */
  errors: number
}

const NL = 0x0a

/** @public */
export class TestServer {
  readonly mode: TestServerMode
  readonly #maxLineBytes: number
  readonly #server: net.Server
  readonly #sockets = new Set<net.Socket>()
  #accepted = 0
  #requests = 0
  #bytesIn = 0
  #bytesOut = 0
  #errors = 0

  constructor (opts: TestServerOptions = {}) {
    this.mode = opts.mode ?? 'echo'
    this.#maxLineBytes = opts.maxLineBytes ?? 1024 * 1024
    this.#server = net.createServer({ allowHalfOpen: true, pauseOnConnect: this.mode === 'stall', noDelay: true })
    this.#server.on('connection', (socket) => { this.#serverOnConnection(socket) })
  }

  /**
   * Start listening. Port 0 picks a free port.
   * @returns the bound address
   */
  async listen (port = 0, host = '127.0.0.1'): Promise<Endpoint> {
    this.#server.listen(port, host)
    await once(this.#server, 'listening')
    const addr = this.#server.address() as net.AddressInfo
    return { host: addr.address, port: addr.port }
  }

  /** The bound address, or null before listen() resolved. */
  get address (): Endpoint | null {
    const addr = this.#server.address()
    return addr === null || typeof addr === 'string' ? null : { host: addr.address, port: addr.port }
  }

  /** Stop accepting and destroy every open connection. Safe to call twice. */
  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    if (!this.#server.listening) return
    const closed = once(this.#server, 'close')
    this.#server.close()
    await closed
  }

  stats (): TestServerStats {
    return {
      connections: this.#sockets.size,
      accepted: this.#accepted,
      requests: this.#requests,
      bytesIn: this.#bytesIn,
      bytesOut: this.#bytesOut,
      errors: this.#errors
    }
  }

  #serverOnConnection (socket: net.Socket): void {
    this.#accepted++
    this.#sockets.add(socket)
    socket.on('error', () => { this.#errors++ })
    socket.on('close', () => { this.#sockets.delete(socket) })
    if (this.mode === 'echo') this.#startEcho(socket)
    else if (this.mode === 'sink') this.#startSink(socket)
    // stall: paused on connect and never resumed.
  }

  #countLines (chunk: Buffer): number {
    let n = 0
    let i = chunk.indexOf(NL)
    while (i !== -1) { n++; i = chunk.indexOf(NL, i + 1) }
    return n
  }

  #startSink (socket: net.Socket): void {
    socket.on('data', (chunk: Buffer) => {
      this.#bytesIn += chunk.length
      this.#requests += this.#countLines(chunk)
    })
    // Our FIN tells the client that every byte it sent has been read.
    socket.on('end', () => { socket.end() })
  }

  #startEcho (socket: net.Socket): void {
    // The unterminated tail of the last chunk(s), held until its '\n' arrives.
    let tail: Buffer | null = null
    const socketOnDrain = (): void => { socket.resume() }
    const write = (buf: Buffer): void => {
      this.#bytesOut += buf.length
      if (!socket.write(buf)) {
        socket.pause()
        socket.once('drain', socketOnDrain)
      }
    }
    socket.on('data', (chunk: Buffer) => {
      this.#bytesIn += chunk.length
      const last = chunk.lastIndexOf(NL)
      if (last === -1) {
        tail = tail === null ? chunk : Buffer.concat([tail, chunk])
        if (tail.length >= this.#maxLineBytes) { write(tail); tail = null }
        return
      }
      this.#requests += this.#countLines(chunk)
      const head = last + 1 === chunk.length ? chunk : chunk.subarray(0, last + 1)
      write(tail === null ? head : Buffer.concat([tail, head]))
      tail = last + 1 === chunk.length ? null : chunk.subarray(last + 1)
    })
    socket.on('end', () => {
      // An unterminated last line is still echoed, then we close our side.
      if (tail !== null) { write(tail); tail = null }
      socket.end()
    })
  }
}

/**
 * Create a test server (not yet listening).
 * @example
 *   const server = createTestServer({ mode: 'sink' })
 *   const { port } = await server.listen(0)
 * @public
 */
export function createTestServer (opts: TestServerOptions = {}): TestServer {
  return new TestServer(opts)
}
