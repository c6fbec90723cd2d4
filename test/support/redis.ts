import fs from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { startProcess, type ServerProcess } from './child.js'
import { freePort, waitFor } from '../helpers.js'

/** A decoded RESP reply. Error replies are values too, so tests can assert on them. */
export type RespValue = string | number | null | RespError | RespValue[]

export class RespError extends Error {
  override name = 'RespError'
}

function encode (args: readonly string[]): Buffer {
  const parts = [`*${args.length}\r\n`]
  for (const arg of args) parts.push(`$${Buffer.byteLength(arg)}\r\n${arg}\r\n`)
  return Buffer.from(parts.join(''))
}

/** Parses one reply at `offset`; returns undefined when the buffer does not hold all of it yet. */
function parse (buf: Buffer, offset: number): { value: RespValue, end: number } | undefined {
  const eol = buf.indexOf('\r\n', offset)
  if (eol === -1) return undefined
  const type = String.fromCharCode(buf[offset] ?? 0)
  const line = buf.toString('utf8', offset + 1, eol)
  switch (type) {
    case '+': return { value: line, end: eol + 2 }
    case '-': return { value: new RespError(line), end: eol + 2 }
    case ':': return { value: Number(line), end: eol + 2 }
    case '$': {
      const len = Number(line)
      if (len < 0) return { value: null, end: eol + 2 }
      if (buf.length < eol + 2 + len + 2) return undefined
      return { value: buf.toString('utf8', eol + 2, eol + 2 + len), end: eol + 2 + len + 2 }
    }
    case '*': {
      const count = Number(line)
      if (count < 0) return { value: null, end: eol + 2 }
      const items: RespValue[] = []
      let end = eol + 2
      for (let i = 0; i < count; i++) {
        const item = parse(buf, end)
        if (item === undefined) return undefined
        items.push(item.value)
        end = item.end
      }
      return { value: items, end }
    }
    default: throw new Error(`RESP: unexpected type byte ${JSON.stringify(type)}`)
  }
}

/**
 * Sends `commands` pipelined on one fresh connection to 127.0.0.1:`port` and resolves with one reply
 * per command, then closes the connection (QUIT is not sent: the client's FIN ends the session).
 */
export async function redisCommands (port: number, commands: readonly (readonly string[])[], timeoutMs = 10_000): Promise<RespValue[]> {
  const socket = net.connect({ host: '127.0.0.1', port })
  socket.setTimeout(timeoutMs)
  let buf = Buffer.alloc(0)
  const replies: RespValue[] = []
  try {
    return await new Promise<RespValue[]>((resolve, reject) => {
      socket.once('connect', () => socket.write(Buffer.concat(commands.map(encode))))
      socket.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk])
        let offset = 0
        for (;;) {
          const reply = parse(buf, offset)
          if (reply === undefined) break
          replies.push(reply.value)
          offset = reply.end
        }
        buf = buf.subarray(offset)
        if (replies.length >= commands.length) resolve(replies)
      })
      socket.once('timeout', () => reject(new Error(`redis :${port}: no reply within ${timeoutMs} ms`)))
      socket.once('error', reject)
      socket.once('close', () => reject(new Error(`redis :${port}: closed after ${replies.length}/${commands.length} replies`)))
    })
  } finally {
    socket.destroy()
  }
}

/** One command; error replies are thrown. */
export async function redisCommand (port: number, args: readonly string[], password?: string): Promise<RespValue> {
  const commands = password === undefined ? [args] : [['AUTH', password], args]
  const replies = await redisCommands(port, commands)
  for (const reply of replies) if (reply instanceof RespError) throw reply
  return replies[replies.length - 1] ?? null
}

export interface RedisServer {
  readonly port: number
  readonly dir: string
  readonly process: ServerProcess
  /** Runs one command on a fresh connection, authenticating first when the server has a password. */
  command (...args: string[]): Promise<RespValue>
  /** DBSIZE of `db` and DEBUG DIGEST of the whole dataset. */
  state (db?: number): Promise<{ dbsize: number, digest: string }>
}

export interface TeardownTarget { teardown (fn: () => void | Promise<void>): void }

/**
 * Starts a throwaway redis-server on a free loopback port with a temporary --dir, no persistence and
 * DEBUG allowed from loopback. Stops it and removes the dir in `t.teardown`.
 */
export async function startRedis (t: TeardownTarget, redisServer: string, { password, args: extra = [] }: { password?: string, /** More redis-server arguments (`--user alice on >pw ~* +@all`). */ args?: readonly string[] } = {}): Promise<RedisServer> {
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'tcptee-redis-'))
  t.teardown(() => fs.rm(dir, { recursive: true, force: true }))
  for (let attempt = 1; ; attempt++) {
    const port = await freePort()
    const args = [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir,
      '--save', '', '--appendonly', 'no', '--enable-debug-command', 'local',
      '--daemonize', 'no', '--logfile', '',
    ]
    if (password !== undefined) args.push('--requirepass', password)
    args.push(...extra)
    const proc = startProcess(redisServer, args)
    t.teardown(() => proc.stop('SIGTERM'))
    const command = (...cmd: string[]): Promise<RespValue> => redisCommand(port, cmd, password)
    try {
      await waitFor(`redis-server on :${port}`, async () => {
        const status = proc.exitStatus()
        if (status !== undefined) throw new Error(`redis-server ${status}:\n${proc.output()}`)
        return (await command('PING')) === 'PONG' ? true : undefined
      }, { timeoutMs: 15_000, intervalMs: 50 })
    } catch (err) {
      if (proc.exitStatus() !== undefined && attempt < 3) continue  // port taken between freePort and bind
      throw err
    }
    return {
      port,
      dir,
      process: proc,
      command,
      async state (db = 0) {
        const replies = await redisCommands(port, [
          ...(password === undefined ? [] : [['AUTH', password]]),
          ['SELECT', String(db)], ['DBSIZE'], ['DEBUG', 'DIGEST'],
        ])
        for (const reply of replies) if (reply instanceof RespError) throw reply
        const [dbsize, digest] = replies.slice(-2)
        if (typeof dbsize !== 'number' || typeof digest !== 'string') throw new Error(`unexpected replies ${JSON.stringify(replies)}`)
        return { dbsize, digest }
      },
    }
  }
}
