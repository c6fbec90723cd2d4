import type { MirrorFate } from '../ops/metrics.js'

/**
 * What a {@link MirrorStage} can do to its mirror connection. The functions are bound to one mirror connection.
 */
export interface StageContext {
  /** Writes bytes to this mirror (after the stage). Counted against the mirror's queue bound like any client byte. */
  send (chunk: Buffer): void
  /** Passes bytes the mirror sent on, as its replies (to the comparer with `--diff`; otherwise they are dropped). */
  reply (chunk: Buffer): void
  /** Ends this mirror connection now with `fate` (for example `auth-failed`), logged once; the client never notices. */
  fail (fate: MirrorFate, err: Error): void
  /**
   * Starts TLS on this mirror connection now (the mirror agreed inside its protocol, e.g. PostgreSQL's SSLRequest),
   * with the mirror's TLS settings (`--mirror-tls`, `--tls-ca`). `onReady` is called once the handshake is done; a
   * failed handshake ends the connection with fate `tls-failed` instead. Send nothing in between. Absent when the
   * mirror connection has no TLS settings for a stage (its TLS mode is `off`, or TLS starts with the first byte).
   */
  startTls? (onReady: () => void): void
  /**
   * The mirror will not answer the client's request number `request` (0-based on this connection) in its reply
   * stream: the stage left it out, or holds the answer back. With `--diff` the comparer then drops main's answer to
   * it instead of pairing it with the mirror's next one. Call it before main can answer: while handling the request.
   */
  omit? (request: number): void
  /**
   * Ends this mirror connection cleanly now: what was sent is delivered, then FIN (fate `ok` when the mirror closes
   * too). Later client bytes are not sent to it. For a stream the mirror copy cannot follow (an HTTP Upgrade).
   */
  end? (): void
}

/**
 * The per-mirror stage: sits between the client's fan-out and one mirror's socket. It may rewrite that mirror's copy
 * of the client stream and see (and hold back) that mirror's replies, for as long as it has work to do: log in with
 * the mirror's own credentials, put a PROXY header in front. A stage owns no socket and no timer; its mirror
 * connection does, and tears everything down.
 *
 * Once {@link passthrough} is true the mirror connection stops calling it: from then on chunks go to the socket and
 * replies to the comparer exactly as without a stage. With no stage configured, the data path does not call anything.
 *
 * Contract: every method is synchronous, never throws (use `ctx.fail`), and never blocks the client.
 */
export interface MirrorStage {
  /** The stage has nothing more to do: the mirror connection bypasses it from now on. */
  readonly passthrough: boolean
  /** Called once, right after the mirror connection is created (before any client byte): e.g. send a PROXY header. */
  start? (ctx: StageContext): void
  /** A chunk of the client's stream for this mirror. Send it on (as is, rewritten, or later) with `ctx.send`. */
  clientData (chunk: Buffer, ctx: StageContext): void
  /** A chunk the mirror sent. Default: passed on as a reply. */
  mirrorData? (chunk: Buffer, ctx: StageContext): void
  /**
   * The client sent FIN while the stage is not passthrough. True: the stage still holds client bytes it will send
   * (a login in progress), so the mirror's FIN waits until the stage is passthrough (at most the mirror write
   * timeout). False or absent: FIN now.
   */
  clientEnd? (ctx: StageContext): boolean
}

/** What a stage factory knows about the session a mirror connection belongs to. */
export interface StageSession {
  /** Connection id (as in the logs). */
  readonly id: number
  /** The client as tcptee sees it (from a PROXY header, when one was accepted). */
  readonly client: Endpoint
  /** The address the client connected to (tcptee's side of the client connection). */
  readonly local: Endpoint
}

/** An address and port as seen on a socket (`remoteAddress`/`remotePort`). */
export interface Endpoint {
  readonly address: string
  readonly port: number
}

/**
 * Watches one session's main path without touching it: the client's bytes before main gets them, and main's bytes
 * after the client got them. A protocol uses it to learn what only main says (PostgreSQL's BackendKeyData, which a
 * cancel request names). Each method returns false once it needs no more of that direction; the connection then
 * stops calling it. Made once per session, with the same {@link StageSession} object the mirror stages get.
 * Contract: synchronous, never throws, never holds or changes bytes.
 */
export interface MainPathObserver {
  client (chunk: Buffer): boolean
  main (chunk: Buffer): boolean
  /** The session is over (both sockets closed, or failed). */
  close (): void
}

/** Makes the main path observer of one session, or undefined. */
export type MainObserverFactory = (session: StageSession) => MainPathObserver | undefined

/** Makes the stage for one mirror connection, or undefined when this mirror needs none. */
export type StageFactory = (session: StageSession) => MirrorStage | undefined

/**
 * Runs stages one after the other: the first sees the client's bytes first and the mirror's replies last.
 * Passthrough when every stage is.
 */
export function chainStages (stages: readonly MirrorStage[]): MirrorStage {
  if (stages.length === 1) return stages[0]!
  // ctxs[i] is what stage i talks to: sending goes to stage i+1 (or the socket), replies to stage i-1 (or the comparer).
  let outer: StageContext | undefined
  const ctxs: StageContext[] = []
  const build = (base: StageContext): void => {
    outer = base
    ctxs.length = 0
    for (let i = 0; i < stages.length; i++) {
      ctxs.push({
        send: (chunk) => { forwardClient(i + 1, chunk) },
        reply: (chunk) => { forwardReply(i - 1, chunk) },
        fail: (fate, err) => { base.fail(fate, err) },
        ...(base.startTls === undefined ? {} : { startTls: (onReady: () => void) => { base.startTls!(onReady) } }),
        omit: (request) => { base.omit?.(request) },
        end: () => { base.end?.() },
      })
    }
  }
  const forwardClient = (i: number, chunk: Buffer): void => {
    const s = stages[i]
    if (s === undefined || s.passthrough) { if (s === undefined) outer!.send(chunk); else forwardClient(i + 1, chunk); return }
    s.clientData(chunk, ctxs[i]!)
  }
  const forwardReply = (i: number, chunk: Buffer): void => {
    const s = stages[i]
    if (s === undefined) { outer!.reply(chunk); return }
    if (s.passthrough || s.mirrorData === undefined) { forwardReply(i - 1, chunk); return }
    s.mirrorData(chunk, ctxs[i]!)
  }
  return {
    get passthrough () { return stages.every((s) => s.passthrough) },
    start (ctx) {
      build(ctx)
      // Next to the socket first: what a stage sends at start (a PROXY header) must precede what the stages before it
      // send at theirs (a PostgreSQL SSLRequest), which goes through it.
      for (let i = stages.length - 1; i >= 0; i--) stages[i]!.start?.(ctxs[i]!)
    },
    clientData (chunk, ctx) {
      if (outer !== ctx) build(ctx)
      forwardClient(0, chunk)
    },
    mirrorData (chunk, ctx) {
      if (outer !== ctx) build(ctx)
      forwardReply(stages.length - 1, chunk)
    },
    clientEnd (ctx) {
      if (outer !== ctx) build(ctx)
      return stages.some((s, i) => !s.passthrough && s.clientEnd?.(ctxs[i]!) === true)
    },
  }
}
