/**
 * The app `tcptee wrap` runs: one child process on a loopback port of ours. Owns the child and the timer that polls
 * its port. Its output goes straight to ours (stdio inherited), unchanged.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { connect } from 'node:net'
import { constants } from 'node:os'
import type { Logger } from 'pino'
import { AppError } from './errors.js'
import { silentLogger } from './logger.js'

export interface WrappedAppOptions {
  command: string
  args: readonly string[]
  /** The loopback port the app is told to listen on. */
  port: number
  /** The environment variable that tells it (default `PORT`); `$NAME` and `${NAME}` in `args` become the port too. */
  portEnv?: string
  env?: NodeJS.ProcessEnv
  logger?: Logger
}

/** How the app ended: its exit code, or the signal that ended it. */
export interface AppExit {
  code: number | null
  signal: NodeJS.Signals | null
}

export class WrappedApp {
  readonly pid: number | undefined
  /** Settles once, when the child has exited (or could not be started: code 127). */
  readonly exited: Promise<AppExit>
  private readonly child: ChildProcess
  private readonly log: Logger
  private exit: AppExit | undefined

  constructor (readonly opts: WrappedAppOptions) {
    this.log = (opts.logger ?? silentLogger()).child({ module: 'wrap' })
    const name = opts.portEnv ?? 'PORT'
    const port = String(opts.port)
    const args = opts.args.map((a) => a.replaceAll(`\${${name}}`, port).replaceAll(`$${name}`, port))
    this.child = spawn(opts.command, args, { stdio: 'inherit', env: { ...(opts.env ?? process.env), [name]: port } })
    this.pid = this.child.pid
    this.exited = new Promise((resolve) => {
      this.child.once('error', (err: NodeJS.ErrnoException) => {
        // spawn failed (ENOENT, EACCES): no 'exit' follows. 127 is what a shell answers for a missing command.
        if (this.exit !== undefined) return
        this.log.error({ err: err.message, command: opts.command }, `cannot start the app: ${err.code ?? err.message}`)
        this.exit = { code: 127, signal: null }
        resolve(this.exit)
      })
      this.child.once('exit', (code, signal) => {
        if (this.exit !== undefined) return
        this.exit = { code, signal }
        resolve(this.exit)
      })
    })
  }

  /** True once the child has exited. */
  get done (): boolean {
    return this.exit !== undefined
  }

  /** Sends `signal` to the app if it still runs. */
  signal (signal: NodeJS.Signals): void {
    if (this.exit === undefined && this.child.exitCode === null) this.child.kill(signal)
  }

  /**
   * Resolves once a TCP connect to the app's port on 127.0.0.1 succeeds (polled every `intervalMs`). Rejects with
   * {@link AppError} when the app exits first or `timeoutMs` passes.
   */
  async waitListening (timeoutMs: number, intervalMs = 100): Promise<void> {
    const deadline = Date.now() + timeoutMs
    for (;;) {
      if (this.exit !== undefined) throw new AppError(`the app exited (${describeExit(this.exit)}) before it listened on port ${this.opts.port}`)
      if (await probe(this.opts.port)) return
      if (Date.now() >= deadline) throw new AppError(`the app did not listen on 127.0.0.1:${this.opts.port} within ${timeoutMs}ms (is it reading $${this.opts.portEnv ?? 'PORT'}?)`)
      await Promise.race([new Promise((resolve) => setTimeout(resolve, intervalMs)), this.exited])
    }
  }
}

/** The exit code tcptee wrap passes on: the app's, or 128 + the signal number, as a shell would. */
export function exitCodeOf (e: AppExit): number {
  if (e.code !== null) return e.code
  const n = e.signal === null ? undefined : constants.signals[e.signal]
  return n === undefined ? 1 : 128 + n
}

export function describeExit (e: AppExit): string {
  return e.code !== null ? `code ${e.code}` : `signal ${e.signal ?? 'unknown'}`
}

function probe (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port })
    const done = (ok: boolean): void => { s.destroy(); resolve(ok) }
    s.once('connect', () => done(true))
    s.once('error', () => done(false))
  })
}
