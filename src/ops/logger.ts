import { pino, type Logger } from 'pino'

export type { Logger }

export interface LoggerOptions {
  level?: string
  /** `json` (default): one JSON object per line. `pretty`: human-readable via pino-pretty. */
  format?: 'json' | 'pretty'
  /** File descriptor to write to. Default 1 (stdout). */
  fd?: number
}

const serializers = { err: pino.stdSerializers.err }

/**
 * Creates the root logger. Writes are synchronous: tcptee logs per connection and per state change, never per chunk,
 * so the cost is small, and no line is lost when the process exits right after a fatal error.
 */
export async function createLogger (opts: LoggerOptions = {}): Promise<Logger> {
  const level = opts.level ?? 'info'
  const fd = opts.fd ?? 1
  if (opts.format === 'pretty') {
    const { default: pretty } = await import('pino-pretty')
    return pino({ level, serializers, base: undefined }, pretty({ destination: fd, sync: true, translateTime: 'SYS:HH:MM:ss.l' }))
  }
  return pino({ level, serializers, base: { pid: process.pid } }, pino.destination({ dest: fd, sync: true }))
}

/** A logger that drops everything: the library default, so embedding tcptee prints nothing unless asked to. */
export function silentLogger (): Logger {
  return pino({ level: 'silent' })
}
