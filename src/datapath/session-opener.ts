import type { Socket } from 'node:net'
import type { Logger } from 'pino'
import type { DialTarget, DialTls, ServerTls, TlsMode } from '../net/transport.js'
import type { SessionEnd } from './connection.js'
import type { SessionSource } from './session-source.js'

/**
 * A protocol's way of opening a session before the data path relays anything: PostgreSQL answers the client's
 * SSLRequest itself (and terminates TLS), and sends main its own SSLRequest. With no opener (`--protocol tcp`) the
 * duplicator does not call anything. Owns the client and main sockets until it resolves or rejects; on every failure
 * path it has destroyed both.
 */
export type SessionOpener = (ctx: SessionOpenContext) => Promise<OpenedSession | undefined>

/** What an opener works with. */
export interface SessionOpenContext {
  /** The accepted client socket, paused, after any PROXY header. */
  readonly client: Socket
  /** `--tls-cert`: the opener may terminate the client's TLS with it (transport's acceptTls); undefined: it must decline. */
  readonly clientTls: ServerTls | undefined
  /** Main's address, for a plain dial. */
  readonly main: DialTarget
  /** `--main-tls` and the TLS settings to start TLS toward main with (undefined when the mode is off). */
  readonly mainTls: { readonly mode: TlsMode; readonly settings: DialTls | undefined }
  /** `--proxy-protocol-out`: what main gets before anything else. */
  readonly mainHeader: Buffer | undefined
  /** Bound on each step (`--connect-timeout`). */
  readonly timeoutMs: number
  /** The connection's logger (with `client`). */
  readonly log: Logger
}

/** The session, opened: what the connection relays from now on. */
export interface OpenedSession {
  /** The client side: the accepted socket, or the TLS socket over it. Paused. */
  readonly source: SessionSource
  /** Main, connected (and TLS set up) by the opener; undefined: the connection dials main itself as usual. Paused. */
  readonly main?: Socket | undefined
  /** Rewrites main's first bytes on their way to the client, until it says it is done; undefined: none. */
  readonly mainToClient?: MainRewriter | undefined
  /**
   * Rewrites the client's first bytes on their way to main only (mirrors, `--diff` and `--record` get them as the
   * client sent them), until it says it is done; undefined: none. MySQL: the login renumbered for a TLS hop to main.
   */
  readonly clientToMain?: StreamRewriter | undefined
  /**
   * Main's bytes the opener already passed to the client (as the client got them): the connection shows them to
   * `--diff`, `--record` and the main path observer before main's next bytes, and does not send them again. MySQL:
   * main's greeting, which the client answers before the session starts.
   */
  readonly mainSent?: Buffer | undefined
  /**
   * True: a reset from main after the client's FIN ends the session as `closed`, not `main-error`. MySQL over TLS to
   * main: the client's FIN follows COM_QUIT, after which the server closes with tcptee's TLS close_notify (sent with
   * that FIN) unread, and its kernel answers with a reset; the client, which said goodbye, is not waiting for anything.
   */
  readonly mainResetAfterClientEndIsClose?: boolean | undefined
}

/**
 * Rewrites the start of one direction of a session (PostgreSQL: drops SCRAM-SHA-256-PLUS from main's offer; MySQL:
 * renumbers the login's packets).
 */
export interface StreamRewriter {
  /** The bytes to send on for `chunk` (may hold some back, or be empty). Never throws. */
  rewrite (chunk: Buffer): Buffer
  /** True once it will not change anything more: the connection stops calling it. */
  readonly done: boolean
}

/** Rewrites the start of main's stream to the client. */
export type MainRewriter = StreamRewriter

/** Why an opener gave up: the session end it means, logged once by the duplicator. */
export class SessionOpenError extends Error {
  constructor (readonly end: SessionEnd, readonly error: Error) {
    super(error.message, { cause: error })
  }
}

/**
 * Waits for `event` on `socket` during a session opener's exchange, bounded; removes its listeners and timer on every
 * path. `onError` maps a socket error (or an early close) and `onTimeout` the deadline to the opener's error.
 */
export function step (socket: Socket, event: string, timeoutMs: number, onError: (err: Error) => Error, onTimeout: () => Error): Promise<void> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => { clearTimeout(timer); socket.removeListener(event, ok); socket.removeListener('error', bad); socket.removeListener('close', closed) }
    const ok = (): void => { cleanup(); resolve() }
    const bad = (err: Error): void => { cleanup(); reject(onError(err)) }
    const closed = (): void => { cleanup(); reject(onError(new Error('the connection closed'))) }
    const timer = setTimeout(() => { cleanup(); reject(onTimeout()) }, timeoutMs)
    socket.once(event, ok)
    socket.on('error', bad)
    socket.once('close', closed)
  })
}
