import type { Test } from 'tap'
import { createDuplicator, type CreateDuplicatorOptions, type Duplicator } from '../src/index.js'
import { createHash, type Hash } from 'node:crypto'
import { once } from 'node:events'
import { readdirSync } from 'node:fs'
import { createServer, connect, type Server, type Socket } from 'node:net'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'

type T = Test

/** What a test peer server does with each accepted connection. */
export type PeerMode =
  | 'echo' // writes every byte back, ends when the client ends
  | 'record' // reads and hashes, ends when the client ends
  | 'junk' // reads and hashes like record, and answers every chunk with 'JUNK' (a mirror whose replies must not leak)
  | 'stall' // accepts and never reads

export interface PeerConn {
  readonly socket: Socket
  readonly hash: Hash
  bytes: number
  /** Kept only with `keep: true`. */
  readonly chunks: Buffer[]
  /** Resolves when the peer saw the client's FIN (or the socket closed). */
  readonly ended: Promise<void>
  /** Resolves on 'close'. */
  readonly closed: Promise<void>
  sawEnd: boolean
  sawError: Error | undefined
  digest (): string
}

export interface Peer {
  readonly host: string
  readonly port: number
  readonly address: { host: string; port: number }
  readonly conns: PeerConn[]
  readonly server: Server
  /** Resolves with the n-th accepted connection (0-based), now or when it arrives. */
  conn (n: number): Promise<PeerConn>
  close (): Promise<void>
}

/** A real TCP server on 127.0.0.1:0 that closes itself and all its sockets at teardown. */
export async function startPeer (t: T, mode: PeerMode, opts: { keep?: boolean; onConnection?: (c: PeerConn) => void } = {}): Promise<Peer> {
  const conns: PeerConn[] = []
  const waiters: Array<{ n: number; resolve: (c: PeerConn) => void }> = []
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => {})
    const hash = createHash('sha256')
    const pc: PeerConn = {
      socket,
      hash,
      bytes: 0,
      chunks: [],
      ended: undefined as unknown as Promise<void>,
      closed: new Promise<void>((resolve) => socket.once('close', () => resolve())),
      sawEnd: false,
      sawError: undefined,
      digest: () => hash.copy().digest('hex'),
    }
    socket.on('error', (e) => { pc.sawError = e })
    ;(pc as { ended: Promise<void> }).ended = new Promise<void>((resolve) => {
      socket.once('end', () => { pc.sawEnd = true; resolve() })
      socket.once('close', () => resolve())
    })
    if (mode === 'stall') {
      socket.pause()
    } else {
      socket.on('data', (chunk: Buffer) => {
        pc.bytes += chunk.length
        hash.update(chunk)
        if (opts.keep === true) pc.chunks.push(chunk)
        if (mode === 'echo') {
          if (!socket.write(chunk)) {
            socket.pause()
            socket.once('drain', () => socket.resume())
          }
        } else if (mode === 'junk') socket.write('JUNK')
      })
      socket.on('end', () => socket.end())
    }
    conns.push(pc)
    opts.onConnection?.(pc)
    for (let i = waiters.length - 1; i >= 0; i--) {
      const w = waiters[i]!
      if (conns[w.n] !== undefined) {
        waiters.splice(i, 1)
        w.resolve(conns[w.n]!)
      }
    }
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const port = (server.address() as { port: number }).port
  const close = async (): Promise<void> => {
    for (const c of conns) c.socket.destroy()
    if (server.listening) await new Promise<void>((r) => server.close(() => r()))
  }
  t.teardown(close)
  return {
    host: '127.0.0.1',
    port,
    address: { host: '127.0.0.1', port },
    conns,
    server,
    conn: (n) => conns[n] !== undefined ? Promise.resolve(conns[n]) : new Promise((resolve) => waiters.push({ n, resolve })),
    close,
  }
}

/**
 * A port that was free a moment ago: binds port 0 on `host`, reads the port, closes. For servers that must be told
 * their port (redis-server, mariadbd, postgres, the spawned CLI) and for "nobody listens here" addresses. Another
 * process could take the port between close and the server's bind; the server start helpers in test/support notice
 * that as an early exit and retry with a new port.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  const server = createServer()
  server.listen(0, host)
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('freePort: no TCP address')
  return address.port
}

/**
 * What a test client sees on `socket`: the bytes, sha256 and first MiB of chunks it received, its last error, whether
 * a FIN came, and promises for the end and the close. `text()` decodes the chunks kept with `encoding`.
 */
export function watchSocket<S extends Socket> (socket: S, encoding: BufferEncoding = 'utf8') {
  const hash = createHash('sha256')
  const state = {
    socket,
    bytes: 0,
    chunks: [] as Buffer[],
    error: undefined as Error | undefined,
    sawEnd: false,
    ended: undefined as unknown as Promise<void>,
    closed: new Promise<void>((resolve) => socket.once('close', () => resolve())),
    digest: () => hash.copy().digest('hex'),
    text: () => Buffer.concat(state.chunks).toString(encoding),
  }
  socket.on('error', (e) => { state.error = e })
  state.ended = new Promise<void>((resolve) => {
    socket.once('end', () => { state.sawEnd = true; resolve() })
    socket.once('close', () => resolve())
  })
  socket.on('data', (c: Buffer) => { state.bytes += c.length; hash.update(c); if (state.bytes <= 1 << 20) state.chunks.push(c) })
  return state
}

/** A client socket to 127.0.0.1:port with allowHalfOpen, destroyed at teardown. Collects and hashes what it receives. */
export function client (t: T, port: number, opts: { paused?: boolean } = {}) {
  const socket = connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
  t.teardown(() => { socket.destroy() })
  const state = Object.assign(watchSocket(socket), {
    connected: new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve())
      socket.once('close', () => reject(new Error('closed before connecting')))
    }),
  })
  if (opts.paused === true) socket.pause()
  return state
}

export function sha256 (b: Buffer): string {
  return createHash('sha256').update(b).digest('hex')
}

/** Deterministic pseudo-random bytes (so a reordering or a gap changes the hash). */
export function pattern (size: number, seed = 1): Buffer {
  const b = Buffer.allocUnsafe(size)
  let x = seed >>> 0 || 1
  for (let i = 0; i < size; i++) {
    x ^= x << 13; x >>>= 0; x ^= x >>> 17; x ^= x << 5; x >>>= 0
    b[i] = x & 0xff
  }
  return b
}

/** A pino logger whose lines are parsed into `lines`, for asserting on what is logged. */
export function captureLogger (): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>)
      cb()
    },
  })
  return { logger: pino({ level: 'debug' }, stream), lines }
}

/** How long {@link waitFor} polls, and how often. */
export interface WaitOptions {
  /** Default 10 s. */
  timeoutMs?: number
  /** Default 5 ms: in-process state changes within a turn of the event loop; server probes pass 50 ms or more. */
  intervalMs?: number
}

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and resolves with that value; throws
 * after `timeoutMs`, naming `what` and keeping the last error the probe threw as `cause`. For state that has no event
 * of its own (a counter reaching a value, a server accepting, a mirror catching up). Not a sleep: it returns as soon
 * as the probe succeeds.
 */
export async function waitFor<T> (
  what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, opts?: WaitOptions,
): Promise<T>
/** @deprecated The old argument order, kept for test files not yet moved: use `waitFor(what, probe, { timeoutMs })`. */
export async function waitFor (cond: () => boolean, timeoutMs?: number, what?: string): Promise<void>
export async function waitFor<T> (
  a: string | (() => boolean), b: (() => T | undefined | false | Promise<T | undefined | false>) | number | undefined,
  c?: WaitOptions | string,
): Promise<T | void> {
  if (typeof a !== 'string') {
    await waitFor(typeof c === 'string' ? c : 'condition', a, { timeoutMs: typeof b === 'number' ? b : 5000 })
    return
  }
  const probe = b as () => T | undefined | false | Promise<T | undefined | false>
  const { timeoutMs = 10_000, intervalMs = 5 } = (c ?? {}) as WaitOptions
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const value = await probe()
      if (value !== undefined && value !== false) return value
    } catch (err) {
      lastError = err
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${a}`, { cause: lastError })
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}

/** Open file descriptors of this process. */
export function fdCount (): number {
  return readdirSync('/proc/self/fd').length
}

/** Active handles and timers of this process, by type (TCPWRAP, TCPSERVERWRAP, Timeout, ...). */
export function resources (): Record<string, number> {
  const out: Record<string, number> = {}
  for (const r of process.getActiveResourcesInfo()) out[r] = (out[r] ?? 0) + 1
  return out
}

/** Writes `data` in `chunkSize` pieces honouring backpressure, then ends. */
export async function writeAll (socket: Socket, data: Buffer, chunkSize = 64 * 1024, end = true): Promise<void> {
  for (let off = 0; off < data.length; off += chunkSize) {
    if (!socket.write(data.subarray(off, off + chunkSize))) await once(socket, 'drain')
  }
  if (end) socket.end()
}

/** Starts an in-process duplicator on 127.0.0.1:0 in front of `main` and `mirrors`; closed (deadline 0) at teardown. */
export async function startDup (
  t: T,
  main: { host: string; port: number } | Peer,
  mirrors: Array<{ host: string; port: number } | Peer>,
  opts: Omit<CreateDuplicatorOptions, 'main' | 'mirrors'> = {},
): Promise<{ dup: Duplicator; port: number }> {
  const addr = (p: { host: string; port: number }) => ({ host: p.host, port: p.port })
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: addr(main), mirrors: mirrors.map(addr), ...opts })
  const { port } = await dup.listen()
  t.teardown(() => dup.close(0))
  return { dup, port }
}

/**
 * A loopback port whose accept queue is full, so new connects hang in SYN-SENT (Linux drops SYNs to a full queue):
 * the only way to make a connect time out on loopback. A python3 child listens with backlog 0 and fills the queue
 * itself; it is killed at teardown.
 */
export async function startBlackhole (t: T): Promise<{ host: string; port: number }> {
  const { spawn } = await import('node:child_process')
  const py = [
    'import socket, sys, time',
    's = socket.socket(); s.bind(("127.0.0.1", 0)); s.listen(0)',
    'port = s.getsockname()[1]; fill = []',
    'for i in range(4):',
    '    c = socket.socket(); c.setblocking(False)',
    '    try: c.connect(("127.0.0.1", port))',
    '    except BlockingIOError: pass',
    '    fill.append(c)',
    'time.sleep(0.2)',
    'print(port, flush=True)',
    'sys.stdin.read()',
  ].join('\n')
  const child = spawn('python3', ['-c', py], { stdio: ['pipe', 'pipe', 'inherit'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const [line] = await once(child.stdout, 'data') as [Buffer]
  return { host: '127.0.0.1', port: Number(line.toString().trim()) }
}
