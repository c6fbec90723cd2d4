/** The built CLI (`dist/cmd/tcptee.js`) as a child process whose JSON log lines are collected; killed at teardown. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { waitFor } from '../helpers.js'

export const CLI = fileURLToPath(new URL('../../dist/cmd/tcptee.js', import.meta.url))

export interface CliProcess {
  readonly child: ChildProcessWithoutNullStreams
  /** Every JSON log line so far (stdout). Other stdout lines (a wrapped app's) are in `text`. */
  readonly lines: Array<Record<string, unknown>>
  /** stdout lines that were not JSON, and all of stderr. */
  readonly text: string[]
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>
  /** Log lines whose msg starts with `msg`. */
  count (msg: string): number
  /** Waits for the n-th (default first) log line whose msg starts with `msg`, and returns it. */
  line (msg: string, opts?: { n?: number; timeoutMs?: number }): Promise<Record<string, unknown>>
}

export function startCli (t: { teardown (fn: () => unknown): void }, args: readonly string[], env: NodeJS.ProcessEnv = process.env): CliProcess {
  const child = spawn(process.execPath, [CLI, ...args], { env, stdio: ['pipe', 'pipe', 'pipe'] })
  t.teardown(() => { if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  const text: string[] = []
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })))
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, nl)
      buf = buf.slice(nl + 1)
      try {
        const parsed = JSON.parse(l) as unknown
        if (parsed !== null && typeof parsed === 'object' && 'msg' in parsed) lines.push(parsed as Record<string, unknown>)
        else text.push(l)
      } catch {
        text.push(l)
      }
    }
  })
  child.stderr.on('data', (d: Buffer) => { text.push(...d.toString().split('\n').filter((l) => l !== '')) })
  const matching = (msg: string) => lines.filter((l) => String(l['msg']).startsWith(msg))
  return {
    child,
    lines,
    text,
    exited,
    count: (msg) => matching(msg).length,
    line: (msg, opts = {}) => waitFor(`log line "${msg}"`, () => matching(msg)[opts.n ?? 0], { timeoutMs: opts.timeoutMs ?? 30_000, intervalMs: 20 }),
  }
}

/**
 * Runs the built CLI with `args` (and `env` over the process's) to its exit: exit code, stdout, stderr. With
 * `timeoutMs`, a CLI still running then (one that started listening instead of failing) is killed.
 */
export async function runCli (args: readonly string[], opts: { env?: Record<string, string>, cwd?: string, timeoutMs?: number } = {}):
Promise<{ code: number | null, stdout: string, stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { env: { ...process.env, ...opts.env }, cwd: opts.cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs)
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => { stdout += d.toString() })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  clearTimeout(timer)
  return { code, stdout, stderr }
}

/**
 * The built CLI listening on `-l 127.0.0.1:0` with `args` (and `env` over the process's), once it logged
 * `listening`: its port, every stdout line parsed as JSON, its stderr and its exit code. Killed at teardown.
 */
export async function startListening (t: { teardown (fn: () => unknown): void }, args: readonly string[], env: Record<string, string> = {}) {
  const child = spawn(process.execPath, [CLI, '-l', '127.0.0.1:0', ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  let buf = ''
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const listening = new Promise<number>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      buf += d.toString()
      let nl
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = JSON.parse(buf.slice(0, nl)) as Record<string, unknown>
        buf = buf.slice(nl + 1)
        lines.push(line)
        if (line['msg'] === 'listening') resolve(Number(String(line['listen']).split(':').pop()))
      }
    })
    child.once('exit', (code) => reject(new Error(`tcptee exited ${code} before listening: ${stderr}`)))
  })
  const port = await listening
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  return { child, port, lines, exited, stderr: () => stderr }
}
