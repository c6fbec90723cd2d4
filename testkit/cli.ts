// What the two test-tool binaries share: a one-line usage error with exit
// code 2, flag-value validation that names the flag, and signal handling in
// the shape of close-with-grace (one async close, a deadline, exit on a
// second signal).
import { ConfigError } from '../src/ops/errors.js'
import { UsageError } from './parse.js'

/** Print `<tool>: <message>` on stderr and exit 2. No stack trace. */
export function exitUsage (tool: string, message: string): never {
  process.stderr.write(`${tool}: ${message.split('\n')[0] ?? ''}\n`)
  process.exit(2)
}

/**
 * Apply `parse` to a flag's value. A UsageError (or a repeated flag) becomes
 * one line naming the flag, then exit 2.
 */
export function flagValue<T> (tool: string, flag: string, value: unknown, parse: (text: string, flag: string) => T): T {
  if (Array.isArray(value)) exitUsage(tool, `${flag}: given more than once`)
  try {
    return parse(String(value), flag)
  } catch (err) {
    // The core's parsers (addresses, durations) name the flag themselves; the size parser does not.
    if (err instanceof ConfigError) exitUsage(tool, err.message)
    if (err instanceof UsageError) exitUsage(tool, `${flag}: ${err.message}`)
    throw err
  }
}

/** A positive integer flag (yargs gives NaN for non-numbers). */
export function positiveInt (tool: string, flag: string, value: unknown, max = Number.MAX_SAFE_INTEGER): number {
  if (Array.isArray(value)) exitUsage(tool, `${flag}: given more than once`)
  const n = typeof value === 'number' ? value : Number.NaN
  if (!Number.isInteger(n) || n < 1 || n > max) exitUsage(tool, `${flag}: must be an integer from 1 to ${max}`)
  return n
}

/**
 * Call `close` on the first SIGINT/SIGTERM, exit when it resolves or after
 * `deadlineMs`, and exit at once on a second signal.
 */
export function closeOnSignal (close: (signal: NodeJS.Signals) => Promise<void>, deadlineMs = 3000): void {
  let closing = false
  const onSignal = (signal: NodeJS.Signals): void => {
    if (closing) process.exit(130)
    closing = true
    const deadline = setTimeout(() => { process.exit(1) }, deadlineMs)
    deadline.unref()
    close(signal).then(() => { process.exit(0) }, (err: unknown) => {
      process.stderr.write(`close failed: ${String(err)}\n`)
      process.exit(1)
    })
  }
  process.on('SIGINT', onSignal)
  process.on('SIGTERM', onSignal)
}
