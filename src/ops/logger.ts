import { pino, type Logger } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level?: string
  /** `json` (default): one JSON object per line. `pretty`: human-readable via pino-pretty, also one line per event. */
  format?: 'json' | 'pretty'
  /** File descriptor to write to. Default 1 (stdout). */
  fd?: number
}

/**
 * An Error is logged whole (class, messages, stack); a `briefError()` (an expected event: a mirror down, a
 * connection cut off) is already what should be logged, and passes unchanged, without a stack.
 */
const serializers = { err: (err: unknown): unknown => err instanceof Error ? pino.stdSerializers.err(err) : err }

/**
 * Creates the root logger. Writes are synchronous: tcptee logs per connection and per state change, never per chunk,
 * so the cost is small, and no line is lost when the process exits right after a fatal error.
 */
export async function createLogger (opts: LoggerOptions = {}): Promise<Logger> {
  const level = opts.level ?? 'info'
  const fd = opts.fd ?? 1
  if (opts.format === 'pretty') {
    const { default: pretty } = await import('pino-pretty')
    // One line per event: pino-pretty prints the keys it takes for errors (pino's errorKey, `err` by default) on
    // lines of their own, stack and all. tcptee logs errors under `err` and never under `error`, so naming `error`
    // as the error key keeps `err` on the event's line, as JSON (an unexpected error's stack escaped in it).
    return pino({ level, serializers, base: undefined, errorKey: 'error' },
      pretty({ destination: fd, sync: true, translateTime: 'SYS:HH:MM:ss.l', singleLine: true, errorLikeObjectKeys: [] }))
  }
  return pino({ level, serializers, base: { pid: process.pid } }, pino.destination({ dest: fd, sync: true }))
}

/** A logger that drops everything: the library default, so embedding tcptee prints nothing unless asked to. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
