// Child processes for the benchmark: spawn, wait until ready (a printed line
// or a port that accepts), bound every wait, and kill what we started.
import net from 'node:net'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'

/** A spawned process and the output it printed (kept for error messages). */
export interface Proc {
  name: string
  child: ChildProcess
  pid: number
  stdout: string
  stderr: string
  /** Resolves with the exit code (null when killed by a signal). */
  exited: Promise<number | null>
  /** Set once the process has exited. */
  exitCode: number | null | undefined
  /** tcptee only: 'mirror connection cut off' log lines seen so far (a mirror that fell behind and was dropped). */
  mirrorCutOffs: number
  /** Called with every whole line the process writes to stderr (e.g. the test client's window marks). */
  onStderrLine: Array<(line: string) => void>
}

const MAX_KEEP = 64 * 1024

/**
 * Every process started and not yet exited: the run kills what is left at its end (a server that was still starting
 * when its setup gave up is in no setup's list, and its pipes would keep the benchmark from exiting).
 */
export const running = new Set<Proc>()

/** Spawn without a shell so the pid is the real process. */
export function start (name: string, command: string, args: string[]): Proc {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] })
  const proc: Proc = {
    name,
    child,
    pid: child.pid ?? -1,
    stdout: '',
    stderr: '',
    exited: Promise.resolve(null),
    exitCode: undefined,
    mirrorCutOffs: 0,
    onStderrLine: []
  }
  let partial = ''
  child.stdout!.setEncoding('utf8').on('data', (s: string) => {
    if (proc.stdout.length < MAX_KEEP) proc.stdout += s
    // Count whole lines only: a chunk may end in the middle of one.
    const lines = (partial + s).split('\n')
    partial = lines.pop() ?? ''
    for (const line of lines) if (line.includes('"msg":"mirror connection cut off')) proc.mirrorCutOffs++
  })
  let partialErr = ''
  child.stderr!.setEncoding('utf8').on('data', (s: string) => {
    if (proc.stderr.length < MAX_KEEP) proc.stderr += s
    if (proc.onStderrLine.length === 0) return
    const lines = (partialErr + s).split('\n')
    partialErr = lines.pop() ?? ''
    for (const line of lines) for (const f of proc.onStderrLine) f(line)
  })
  proc.exited = new Promise((resolve) => {
    child.on('error', (err) => { proc.stderr += `spawn error: ${err.message}\n`; proc.exitCode = -1; running.delete(proc); resolve(-1) })
    child.on('exit', (code) => { proc.exitCode = code; running.delete(proc); resolve(code) })
  })
  running.add(proc)
  return proc
}

function describe (proc: Proc): string {
  const tail = (proc.stderr + proc.stdout).trim().split('\n').slice(-3).join(' | ')
  return `${proc.name} (pid ${proc.pid})${tail === '' ? '' : `: ${tail}`}`
}

/**
 * Resolve with the first stdout line matching `re`; reject if the process
 * exits first or `timeoutMs` passes.
 */
export async function waitForLine (proc: Proc, re: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
  const out = proc.child.stdout!
  return await new Promise((resolve, reject) => {
    const check = (): void => {
      const m = re.exec(proc.stdout)
      if (m !== null) { cleanup(); resolve(m) }
    }
    const onExit = (): void => { cleanup(); reject(new Error(`exited before ready: ${describe(proc)}`)) }
    const timer = setTimeout(() => { cleanup(); reject(new Error(`not ready after ${timeoutMs} ms: ${describe(proc)}`)) }, timeoutMs)
    const cleanup = (): void => {
      clearTimeout(timer)
      out.off('data', check)
      proc.child.off('exit', onExit)
      proc.child.off('error', onExit)
    }
    out.on('data', check)
    proc.child.on('exit', onExit)
    proc.child.on('error', onExit)
    check()
  })
}

async function canConnect (port: number): Promise<boolean> {
  const socket = net.connect({ port, host: '127.0.0.1' })
  try {
    await once(socket, 'connect')
    return true
  } catch {
    return false
  } finally {
    socket.destroy()
  }
}

/** Poll a TCP connect to the port until it succeeds; fail if the process exits or on timeout. */
export async function waitForPort (proc: Proc, port: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (proc.exitCode !== undefined) throw new Error(`exited before listening: ${describe(proc)}`)
    if (await canConnect(port)) return
    await new Promise((resolve) => { setTimeout(resolve, 20) })
  }
  throw new Error(`port ${port} not accepting after ${timeoutMs} ms: ${describe(proc)}`)
}

/**
 * n distinct ports that were free a moment ago: all n are bound at once (so
 * they cannot repeat), then released. Call it after the test servers are
 * listening, so none of their ports can come back.
 */
let nextFixedPort = 20_000 + (process.pid % 1000) * 10

/**
 * Ports for the proxies and the refused mirrors, taken from below the kernel's ephemeral range (32768-60999 here),
 * where no `listen(0)` of a test server can land between the time we pick a port and the time the proxy binds it.
 * Each one is checked free by binding it once.
 */
export async function freePorts (n: number): Promise<number[]> {
  const ports: number[] = []
  while (ports.length < n) {
    const port = nextFixedPort++
    if (nextFixedPort >= 32_000) nextFixedPort = 20_000
    const s = net.createServer()
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false))
      s.listen(port, '127.0.0.1', () => resolve(true))
    })
    if (ok) {
      s.close()
      await once(s, 'close')
      ports.push(port)
    }
  }
  return ports
}

/** SIGKILL (the benchmark needs no graceful shutdown) and wait for the exit. */
export async function kill (proc: Proc): Promise<void> {
  if (proc.exitCode !== undefined) return
  proc.child.kill('SIGKILL')
  await proc.exited
}

/** Wait for exit; SIGKILL after timeoutMs. Resolves true if it had to kill. */
export async function waitOrKill (proc: Proc, timeoutMs: number): Promise<boolean> {
  let killed = false
  const timer = setTimeout(() => { killed = true; proc.child.kill('SIGKILL') }, timeoutMs)
  await proc.exited
  clearTimeout(timer)
  return killed
}
