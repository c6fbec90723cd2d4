import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process'

/** A long-running server started as a child process, with its output kept for failure messages. */
export interface ServerProcess {
  readonly child: ChildProcess
  /** stdout and stderr so far (last 64 KiB). */
  output (): string
  /** Set once the process has exited. */
  exitStatus (): string | undefined
  /** Sends `signal`, waits up to `deadlineMs` for exit, then SIGKILLs. Safe to call twice. */
  stop (signal?: NodeJS.Signals, deadlineMs?: number): Promise<void>
}

const OUTPUT_LIMIT = 64 * 1024

export function startProcess (command: string, args: readonly string[], options: SpawnOptions = {}): ServerProcess {
  const child = spawn(command, args, { ...options, stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  let status: string | undefined
  const onOutput = (chunk: Buffer): void => {
    output = (output + chunk.toString('utf8')).slice(-OUTPUT_LIMIT)
  }
  child.stdout?.on('data', onOutput)
  child.stderr?.on('data', onOutput)
  const exited = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      status = signal === null ? `exited with code ${code}` : `killed by ${signal}`
      resolve()
    })
    child.once('error', (err) => {
      status = `failed to start: ${err.message}`
      resolve()
    })
  })
  return {
    child,
    output: () => output,
    exitStatus: () => status,
    async stop (signal = 'SIGTERM', deadlineMs = 15_000) {
      if (status !== undefined) return
      child.kill(signal)
      const timer = setTimeout(() => child.kill('SIGKILL'), deadlineMs)
      await exited
      clearTimeout(timer)
    },
  }
}

export interface RunResult { code: number | null, signal: NodeJS.Signals | null, stdout: string, stderr: string }

/** Runs a command to completion, feeding `input` on stdin; kills it after `timeoutMs`. Never rejects on a non-zero exit. */
export async function run (
  command: string, args: readonly string[], options: SpawnOptions & { input?: string, timeoutMs?: number } = {}
): Promise<RunResult> {
  const { input, timeoutMs = 60_000, ...spawnOptions } = options
  const child = spawn(command, args, { ...spawnOptions, stdio: ['pipe', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout?.on('data', (c: Buffer) => { stdout += c.toString('utf8') })
  child.stderr?.on('data', (c: Buffer) => { stderr += c.toString('utf8') })
  child.stdin?.on('error', () => {})  // the command may exit before reading all of stdin; its exit code tells
  child.stdin?.end(input ?? '')
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs)
  return await new Promise<RunResult>((resolve, reject) => {
    child.once('error', (err) => { clearTimeout(timer); reject(err) })
    child.once('close', (code, signal) => {
      clearTimeout(timer)
      resolve({ code, signal, stdout, stderr })
    })
  })
}

/** `run` that throws, with the command's output, unless it exits 0. */
export async function runOk (
  command: string, args: readonly string[], options: SpawnOptions & { input?: string, timeoutMs?: number } = {}
): Promise<RunResult> {
  const result = await run(command, args, options)
  if (result.code !== 0) {
    throw new Error(`${command} ${args.join(' ')} failed (code ${result.code}, signal ${result.signal}):\n${result.stdout}\n${result.stderr}`)
  }
  return result
}
