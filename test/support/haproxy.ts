import { once } from 'node:events'
import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { readProxyHeader, type ProxyHeader } from '../../src/protocols/proxy/index.js'
import { freePort, waitFor } from '../helpers.js'
import { startProcess, type ServerProcess } from './child.js'
import { requireBins, type BinGate } from './require-bin.js'

export interface TeardownTarget { teardown (fn: () => void | Promise<void>): void }

/**
 * The haproxy binary, or undefined after reporting it missing: the test file is skipped with a message saying
 * to `apt-get install haproxy` (a failure with CI=true). Debian keeps it in /usr/sbin, which require-bin searches.
 */
export function requireHaproxy (t: BinGate): string | undefined {
  return requireBins(t, ['haproxy'], 'apt-get install haproxy')?.haproxy
}

export interface Haproxy {
  /** The loopback port picked for each name passed to {@link startHaproxy}. */
  readonly ports: Readonly<Record<string, number>>
  readonly process: ServerProcess
  /** The config file as written, for failure messages. */
  readonly config: string
}

/**
 * Starts a throwaway `haproxy -f <cfg> -db` (foreground) from a temporary directory. `sections` gets one free
 * loopback port per name in `portNames` and returns the frontends and backends; this helper adds `global`, `defaults`
 * and a `ready` frontend, and resolves once that frontend accepts a TCP connection (haproxy binds every listener
 * before it serves any, so the others are bound too). The probe goes to its own frontend so that it never reaches a
 * test's backend. Stopped, and the directory removed, in `t.teardown`. A port taken between freePort and haproxy's
 * bind shows as an early exit and is retried with new ports.
 */
export async function startHaproxy (
  t: TeardownTarget, haproxyBin: string, portNames: readonly string[], sections: (ports: Readonly<Record<string, number>>) => string
): Promise<Haproxy> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-haproxy-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  for (let attempt = 1; ; attempt++) {
    const ports: Record<string, number> = {}
    for (const name of [...portNames, 'ready']) ports[name] = await freePort()
    const config = [
      'global',
      '  maxconn 100',
      '',
      'defaults',
      '  timeout connect 5s',
      '  timeout client 30s',
      '  timeout server 30s',
      '',
      'frontend ready',
      `  bind 127.0.0.1:${ports['ready']}`,
      '  mode tcp',
      '  tcp-request connection reject',
      '',
      sections(ports),
      '',
    ].join('\n')
    const file = path.join(dir, 'haproxy.cfg')
    await fs.writeFile(file, config)
    const proc = startProcess(haproxyBin, ['-f', file, '-db'], { cwd: dir })
    t.teardown(() => proc.stop('SIGTERM'))
    try {
      await waitFor(`haproxy on :${ports['ready']}`, async () => {
        const status = proc.exitStatus()
        if (status !== undefined) throw new Error(`haproxy ${status}:\n${proc.output()}\nconfig:\n${config}`)
        return await accepts(ports['ready'] ?? 0)
      }, { timeoutMs: 15_000 })
    } catch (err) {
      if (proc.exitStatus() !== undefined && attempt < 3 && /cannot bind|Address already in use/i.test(proc.output())) continue
      throw err
    }
    return { ports, process: proc, config }
  }
}

/** Whether a TCP connection to 127.0.0.1:port is accepted (the `ready` frontend then rejects it, which is fine). */
async function accepts (port: number): Promise<boolean> {
  return await new Promise<boolean>((resolve) => {
    const socket = net.connect({ host: '127.0.0.1', port })
    socket.once('connect', () => { socket.destroy(); resolve(true) })
    socket.once('error', () => { socket.destroy(); resolve(false) })
  })
}

/**
 * A raw TCP server standing in for a PROXY protocol receiver (a mirror given as `host:port@proxy-v2`): from each
 * connection, in order of arrival, `next()` reads the header with readProxyHeader, then everything after it until
 * the peer's FIN, and answers FIN. It rejects when a connection does not start with a valid header. Every socket and
 * the server are closed at teardown.
 */
export async function startProxyHeaderReader (t: TeardownTarget): Promise<{ port: number; next: () => Promise<{ header: ProxyHeader; payload: Buffer }> }> {
  const server = net.createServer({ pauseOnConnect: true, allowHalfOpen: true })
  const sockets = new Set<net.Socket>()
  const queue: net.Socket[] = []
  const waiting: Array<(s: net.Socket) => void> = []
  server.on('connection', (socket) => {
    sockets.add(socket)
    socket.on('error', () => {})
    socket.once('close', () => sockets.delete(socket))
    const w = waiting.shift()
    if (w !== undefined) w(socket)
    else queue.push(socket)
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  t.teardown(() => {
    for (const socket of sockets) socket.destroy()
    server.close()
  })
  return {
    port: (server.address() as net.AddressInfo).port,
    async next () {
      const socket = queue.shift() ?? await new Promise<net.Socket>((resolve) => waiting.push(resolve))
      const { header, rest } = await readProxyHeader(socket, { timeoutMs: 10_000 })
      const chunks: Buffer[] = [rest]
      socket.on('data', (c: Buffer) => chunks.push(c))
      const ended = new Promise((resolve) => { socket.once('end', resolve); socket.once('close', resolve) })
      socket.resume()
      await ended
      socket.end()
      return { header, payload: Buffer.concat(chunks) }
    },
  }
}
