import type { Endpoint } from './stage.js'

/**
 * The client side of a session: where the client's bytes come from and where main's replies go. A live client is a
 * `net.Socket` (or a `tls.TLSSocket`); a recorded session played back is any Duplex with the same events. The
 * connection reads it with 'data'/'end', pauses it for backpressure, writes main's bytes to it and destroys it once.
 *
 * Events it must emit like a socket does: 'data', 'end' (the client's FIN), 'drain', 'error', and 'close' once
 * both directions are finished (a Duplex with `autoDestroy`, the default, does this).
 */
export interface SessionSource {
  on (event: 'data', listener: (chunk: Buffer) => void): this
  on (event: 'end' | 'drain' | 'close', listener: () => void): this
  on (event: 'error', listener: (err: Error) => void): this
  removeListener (event: 'data', listener: (chunk: Buffer) => void): this
  write (chunk: Buffer): boolean
  end (): unknown
  pause (): unknown
  resume (): unknown
  destroy (err?: Error): unknown
  readonly destroyed: boolean
  /** Sockets: close with RST instead of FIN, the way a failed peer would. */
  resetAndDestroy? (): unknown
  /** Sockets: still connecting (never true for an accepted socket). */
  readonly connecting?: boolean
}

/** Who the client of a session is, as it is logged and given to stages and PROXY headers. */
export interface SessionPeer {
  /** The client (from a PROXY header when one was accepted, else the socket's remote end). */
  readonly client: Endpoint
  /** What the client connected to (tcptee's address on the client connection). */
  readonly local: Endpoint
}

/** The peer of an accepted socket, as the socket sees it. */
export function socketPeer (s: { remoteAddress?: string | undefined; remotePort?: number | undefined; localAddress?: string | undefined; localPort?: number | undefined }): SessionPeer {
  return {
    client: { address: s.remoteAddress ?? '?', port: s.remotePort ?? 0 },
    local: { address: s.localAddress ?? '?', port: s.localPort ?? 0 },
  }
}
