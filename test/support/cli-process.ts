/** The built CLI (`dist/cmd/tcptee.js`) as a child process whose JSON log lines are collected; killed at teardown. */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process'
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
