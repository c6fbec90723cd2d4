/**
 * Every error tcptee creates is a {@link TcpteeError} with a stable `code`.
 * Match on `err.code`, not on the class: codes are part of the public API and listed in the README.
 */

/** The stable error codes, in one place. */
export const ErrorCodes = {
  CONFIG: 'TCPTEE_ERR_CONFIG',
  LISTEN: 'TCPTEE_ERR_LISTEN',
  MAIN_CONNECT: 'TCPTEE_ERR_MAIN_CONNECT',
  MAIN_CONNECT_TIMEOUT: 'TCPTEE_ERR_MAIN_CONNECT_TIMEOUT',
  MIRROR_CONNECT: 'TCPTEE_ERR_MIRROR_CONNECT',
  MIRROR_CONNECT_TIMEOUT: 'TCPTEE_ERR_MIRROR_CONNECT_TIMEOUT',
  MIRROR_OVERFLOW: 'TCPTEE_ERR_MIRROR_OVERFLOW',
  MIRROR_FLOOD: 'TCPTEE_ERR_MIRROR_FLOOD',
  MIRROR_WRITE_TIMEOUT: 'TCPTEE_ERR_MIRROR_WRITE_TIMEOUT',
  MIRROR_TLS: 'TCPTEE_ERR_MIRROR_TLS',
  MIRROR_AUTH: 'TCPTEE_ERR_MIRROR_AUTH',
  MAIN_TLS: 'TCPTEE_ERR_MAIN_TLS',
  CLIENT_TLS: 'TCPTEE_ERR_CLIENT_TLS',
  SHUTDOWN: 'TCPTEE_ERR_SHUTDOWN',
  ADMIN_LISTEN: 'TCPTEE_ERR_ADMIN_LISTEN',
  WORKERS_UNAVAILABLE: 'TCPTEE_ERR_WORKERS_UNAVAILABLE',
  PROXY_PROTOCOL: 'TCPTEE_ERR_PROXY_PROTOCOL',
  CAPTURE: 'TCPTEE_ERR_CAPTURE',
  RECORD: 'TCPTEE_ERR_RECORD',
  STATUS_READ: 'TCPTEE_ERR_STATUS_READ',
  APP: 'TCPTEE_ERR_APP',
} as const

export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** Base class: carries a stable `code` and keeps the low-level error as `cause`. */
export class TcpteeError extends Error {
  override name = 'TcpteeError'
  readonly code: ErrorCode
  constructor (code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/**
 * The base of an error class whose code is fixed: `class ListenError extends fixedCode('ListenError', ErrorCodes.LISTEN) {}`.
 * Its instances are created as `new ListenError(message, { cause })`; `name` is the class's name, `instanceof` holds
 * for the class and for TcpteeError.
 */
function fixedCode (name: string, code: ErrorCode) {
  return class extends TcpteeError {
    override name = name
    constructor (message: string, options?: { cause?: unknown }) {
      super(code, message, options)
    }
  }
}

/** Names an option key the way its reader knows it: the CLI passes `(key) => '--' + flag`. */
export type OptionNamer = (key: string) => string

/**
 * A flag, environment variable or option is missing or does not parse. `flag` names it as the CLI spells it
 * (`--mirror-buffer`), `key` as the library does (`mirrorBuffer`, when the error is about one option).
 * The library's message names keys (`mirrorBuffer: 12 bytes is too small`); {@link ConfigError.messageFor} gives the
 * same message with the options named another way, which is how the CLI prints `--mirror-buffer: ...`.
 */
export class ConfigError extends TcpteeError {
  override name = 'ConfigError'
  readonly flag: string | undefined
  readonly key: string | undefined
  declare private readonly render: ((name: OptionNamer) => string) | undefined
  constructor (message: string, flag?: string, options?: { cause?: unknown; key?: string; render?: (name: OptionNamer) => string }) {
    super(ErrorCodes.CONFIG, message, options?.cause === undefined ? undefined : { cause: options.cause })
    this.flag = flag
    this.key = options?.key
    // Not enumerable: it is no data, and loggers serialise an error's own enumerable fields.
    Object.defineProperty(this, 'render', { value: options?.render, enumerable: false })
  }

  /** The message with every option it mentions named by `name`. Without a rendering of its own: the message. */
  messageFor (name: OptionNamer): string {
    return this.render === undefined ? this.message : this.render(name)
  }
}

/** The listen address is in use, not permitted or does not exist. */
export class ListenError extends fixedCode('ListenError', ErrorCodes.LISTEN) {}

/** The main server refused, reset or could not be resolved while connecting. */
export class MainConnectError extends fixedCode('MainConnectError', ErrorCodes.MAIN_CONNECT) {}

/** The main server did not accept within `connectTimeout`. */
export class MainConnectTimeoutError extends fixedCode('MainConnectTimeoutError', ErrorCodes.MAIN_CONNECT_TIMEOUT) {}

/** A mirror refused, reset or could not be resolved while connecting. */
export class MirrorConnectError extends fixedCode('MirrorConnectError', ErrorCodes.MIRROR_CONNECT) {}

/** A mirror did not accept within `mirrorConnectTimeout`. */
export class MirrorConnectTimeoutError extends fixedCode('MirrorConnectTimeoutError', ErrorCodes.MIRROR_CONNECT_TIMEOUT) {}

/** A mirror connection's write queue would have exceeded `mirrorBuffer` bytes: that mirror connection was cut off. */
export class MirrorOverflowError extends fixedCode('MirrorOverflowError', ErrorCodes.MIRROR_OVERFLOW) {}

/** A mirror sent far more reply bytes than main did on the same session: it was cut off (fate `flood`). */
export class MirrorFloodError extends fixedCode('MirrorFloodError', ErrorCodes.MIRROR_FLOOD) {}

/** A mirror connection had queued bytes but made no write progress for `mirrorWriteTimeout`: it was cut off. */
export class MirrorWriteTimeoutError extends fixedCode('MirrorWriteTimeoutError', ErrorCodes.MIRROR_WRITE_TIMEOUT) {}

/** The connection was still open when the shutdown deadline passed and was destroyed. */
export class ShutdownError extends fixedCode('ShutdownError', ErrorCodes.SHUTDOWN) {}

/** The admin HTTP endpoint (`--admin`) could not listen. */
export class AdminListenError extends fixedCode('AdminListenError', ErrorCodes.ADMIN_LISTEN) {}

/**
 * With `--workers N`: not every worker answered an admin request in time. The admin endpoint answers 503. A change
 * (PUT/DELETE, reload) is still recorded by the primary and reaches the late workers and any worker started later.
 */
export class WorkersUnavailableError extends fixedCode('WorkersUnavailableError', ErrorCodes.WORKERS_UNAVAILABLE) {}

/** The TLS handshake with a mirror failed (certificate rejected with `verify`, protocol mismatch): fate `tls-failed`. */
export class MirrorTlsError extends fixedCode('MirrorTlsError', ErrorCodes.MIRROR_TLS) {}

/**
 * tcptee could not log in to a mirror for a client (`--protocol` with `--mirror-credentials`): no password known for
 * that mirror and user, or the mirror refused the login (its own error text in the message). Fate `auth-failed`.
 * Never carries a password.
 */
export class MirrorAuthError extends fixedCode('MirrorAuthError', ErrorCodes.MIRROR_AUTH) {}

/** The TLS handshake with main failed: the client's connection is closed, as if main had refused it. */
export class MainTlsError extends fixedCode('MainTlsError', ErrorCodes.MAIN_TLS) {}

/** A client's TLS handshake with tcptee failed (no or a wrong client certificate, plain text on a TLS port). */
export class ClientTlsError extends fixedCode('ClientTlsError', ErrorCodes.CLIENT_TLS) {}

/** A pcap or pcapng file that cannot be read: not a capture, truncated, an unsupported link type. */
export class CaptureError extends fixedCode('CaptureError', ErrorCodes.CAPTURE) {}

/** The recording file could not be written (disk full, permission): recording stops; main is not affected. */
export class RecordError extends fixedCode('RecordError', ErrorCodes.RECORD) {}

/** How an expected run-time error is logged: what it is and why, on one line, without a stack trace. */
export interface BriefError {
  readonly type: string
  readonly code: string | undefined
  /** The message with its causes' messages after it (`mirror a:1: connect failed: connect ECONNREFUSED a:1`). */
  readonly message: string
}

/**
 * An error as a log field for an expected event (a mirror down, a connection cut off, a client's failed handshake):
 * its class, code and messages, without the stack, which would only say where tcptee noticed a network fault. A
 * programming error is logged whole instead (pino's `err` serializer).
 */
export function briefError (err: unknown): BriefError | undefined {
  if (err === undefined || err === null) return undefined
  if (!(err instanceof Error)) return { type: typeof err, code: undefined, message: String(err) }
  let message = err.message
  const seen = new Set<unknown>([err])
  for (let cause = err.cause; cause instanceof Error && !seen.has(cause); cause = cause.cause) {
    seen.add(cause)
    if (!message.includes(cause.message)) message += `: ${cause.message}`
  }
  const code = (err as { code?: unknown }).code
  return { type: err.name, code: typeof code === 'string' ? code : undefined, message }
}

/** `tcptee status`: the admin endpoint could not be read (refused, timed out, 401, not a tcptee). Exit 1. */
export class StatusReadError extends fixedCode('StatusReadError', ErrorCodes.STATUS_READ) {}

/** `tcptee wrap`: the wrapped app could not be started, or exited or did not listen before its deadline. Exit 1. */
export class AppError extends fixedCode('AppError', ErrorCodes.APP) {}
