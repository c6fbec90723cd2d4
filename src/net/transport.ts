/**
 * The one place that opens sockets: {@link dial} (to main and mirrors, plain or TLS), {@link createListener} and
 * {@link acceptTls} (for clients). Nothing else in the library calls `net.connect`, `net.createServer`, `tls.connect` or
 * `tls.createServer` (the admin endpoint is HTTP and has its own server in src/ops/admin.ts).
 *
 * {@link dial} with TLS starts it with the first byte. PostgreSQL and MySQL negotiate TLS inside their protocol: their
 * session opener and mirror stages dial in plain TCP and call {@link startTls} on the connected socket with the same
 * settings ({@link DialTls}) once the server agreed; the client side of that is {@link acceptTls}.
 */
import { readFileSync } from 'node:fs'
import { connect as netConnect, createServer as netCreateServer, isIP, type Server, type Socket } from 'node:net'
import {
  checkServerIdentity,
  connect as tlsConnect,
  createSecureContext,
  TLSSocket,
  type ConnectionOptions,
  type PeerCertificate,
  type SecureContextOptions,
  type SecureContext,
} from 'node:tls'
import { ClientTlsError, ConfigError } from '../ops/errors.js'
import { flagName } from '../options.js'
import type { Address } from './address.js'

/**
 * How TLS to a server is checked: `on` encrypts without checking the certificate; `verify` checks the chain and the
 * name; `prefer` (protocols that ask first) uses TLS when the server agrees, unchecked as `on`.
 */
export type TlsMode = 'off' | 'on' | 'verify' | 'prefer'

/** TLS settings for one outgoing connection. */
export interface DialTls {
  readonly verify: boolean
  /** Trusted CAs in PEM (`--tls-ca`); Node's default CAs when undefined. */
  readonly ca?: Buffer | undefined
  /** Name sent in SNI and checked against the certificate (`--tls-servername`); the host when undefined. */
  readonly servername?: string | undefined
}

/** Where and how to connect. */
export interface DialTarget {
  readonly address: Address
  /** TLS from the first byte; plain TCP when undefined. */
  readonly tls?: DialTls | undefined
}

/** A socket being opened, and the event that says it is ready for the session (`connect`, or `secureConnect` for TLS). */
export interface Dialed {
  readonly socket: Socket
  readonly readyEvent: 'connect' | 'secureConnect'
}

export interface DialOptions {
  /**
   * Read whatever arrives into one shared buffer and drop it, without allocating or emitting 'data' (mirror replies
   * nobody compares). Plain TCP only: a TLS socket has to decrypt, so its replies are read with 'data' and dropped.
   */
  readonly discard?: { readonly buffer: Buffer; readonly callback: (bytesRead: number) => boolean } | undefined
}

/**
 * Opens a connection. Both kinds are `allowHalfOpen` with Nagle off: a FIN is forwarded with `.end()` and the
 * other direction keeps flowing. Errors (refused, handshake failed, certificate rejected) arrive as 'error' events.
 */
export function dial (target: DialTarget, opts: DialOptions = {}): Dialed {
  const { host, port } = target.address
  const tls = target.tls
  if (tls === undefined) {
    const socket = opts.discard === undefined
      ? netConnect({ host, port, allowHalfOpen: true, noDelay: true })
      : netConnect({ host, port, allowHalfOpen: true, noDelay: true, onread: opts.discard })
    return { socket, readyEvent: 'connect' }
  }
  const socket: TLSSocket = tlsConnect({ host, port, ...tlsOptions(tls, host) } as unknown as ConnectionOptions)
  socket.setNoDelay(true)
  return { socket, readyEvent: 'secureConnect' }
}

/** Client-side TLS options for `tls` toward `host`, half-open like every socket here. */
function tlsOptions (tls: DialTls, host: string): Record<string, unknown> {
  const name = tls.servername ?? host
  // SNI must be a host name, never an IP literal (RFC 6066); the certificate is checked against `name` either way:
  // Node checks `servername`, else `host`, and an IP is matched against the certificate's IP SANs.
  // allowHalfOpen is passed on to the TLSSocket by Node (lib/_tls_wrap.js) but missing from the types.
  return {
    allowHalfOpen: true,
    rejectUnauthorized: tls.verify,
    ...(isIP(name) === 0 ? { servername: name } : { checkServerIdentity: (_h: string, cert: PeerCertificate) => checkServerIdentity(name, cert) }),
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
  }
}

/**
 * Starts the client side of TLS on a connected plain socket (the server agreed to TLS inside its protocol: a
 * PostgreSQL SSLRequest answered `S`). The TLS socket takes over the TCP socket's handle: from now on read, write,
 * end and destroy the returned socket; its 'secureConnect' says the handshake is done, 'error' that it failed.
 */
export function startTls (socket: Socket, tls: DialTls, host: string): TLSSocket {
  const secure = tlsConnect({ socket, ...tlsOptions(tls, host) } as unknown as ConnectionOptions)
  secure.setNoDelay(true)
  return secure
}

/** TLS for clients (`--tls-cert`, `--tls-key`, `--tls-client-ca`): PEM file paths. */
export interface ServerTlsFiles {
  readonly cert: string
  readonly key: string
  readonly clientCa?: string | undefined
}

/** TLS files read and checked: what {@link acceptTls} takes. A reload makes a new one; open sessions keep theirs. */
export interface ServerTls {
  readonly context: SecureContext
  readonly requestCert: boolean
}

/** Option keys, for errors: the library names keys, the CLI turns them into flags. */
const KEYS = { cert: 'tlsCert', key: 'tlsKey', clientCa: 'tlsClientCa', ca: 'tlsCa' } as const

/** A ConfigError about option `key`: the library's message names the key, the CLI's the flag (see ConfigError.messageFor). */
function optionError (key: string, text: (name: (key: string) => string) => string, cause?: unknown): ConfigError {
  return new ConfigError(text((k) => k), flagName(key), { key, render: text, cause })
}

function readPem (file: string, key: string): Buffer {
  try {
    return readFileSync(file)
  } catch (err) {
    throw optionError(key, (n) => `${n(key)}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err)
  }
}

/**
 * Reads and checks the client-facing certificate, key and client CA. Throws ConfigError naming the option
 * (`tlsCert`, `tlsKey`, `tlsClientCa`) when a file is missing, is not PEM, or the key does not match the certificate.
 */
export function loadServerTls (files: ServerTlsFiles): ServerTls {
  const cert = readPem(files.cert, KEYS.cert)
  const key = readPem(files.key, KEYS.key)
  const ca = files.clientCa === undefined ? undefined : readPem(files.clientCa, KEYS.clientCa)
  if (!cert.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw optionError(KEYS.cert, (n) => `${n(KEYS.cert)}: ${files.cert} holds no PEM certificate`)
  }
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(key.toString('latin1'))) {
    throw optionError(KEYS.key, (n) => `${n(KEYS.key)}: ${files.key} holds no PEM private key`)
  }
  if (ca !== undefined && !ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) {
    throw optionError(KEYS.clientCa, (n) => `${n(KEYS.clientCa)}: ${files.clientCa ?? ''} holds no PEM certificate`)
  }
  const options: SecureContextOptions = ca === undefined ? { cert, key } : { cert, key, ca }
  let context: SecureContext
  try {
    context = createSecureContext(options)
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err)
    const which = /key values mismatch|private key/i.test(why) ? KEYS.key : /ca|certificate authority/i.test(why) && ca !== undefined ? KEYS.clientCa : KEYS.cert
    const file = files[which === KEYS.key ? 'key' : which === KEYS.cert ? 'cert' : 'clientCa'] ?? ''
    throw optionError(which, (n) => `${n(which)}: ${file}: ${why}`, err)
  }
  return Object.freeze({ context, requestCert: ca !== undefined })
}

/** Reads `--tls-ca`: trusted CAs for `--main-tls verify` and `--mirror-tls verify`. Throws ConfigError naming `tlsCa`. */
export function loadCa (file: string): Buffer {
  const ca = readPem(file, KEYS.ca)
  if (!ca.toString('latin1').includes('-----BEGIN CERTIFICATE-----')) throw optionError(KEYS.ca, (n) => `${n(KEYS.ca)}: ${file} holds no PEM certificate`)
  return ca
}

/**
 * The client-facing server: plain TCP with `pauseOnConnect`, so nothing is read from a client before its session
 * starts. TLS for clients is {@link acceptTls} on the accepted socket, after a PROXY header if one is expected: the
 * header comes before the TLS handshake on the wire.
 */
export function createListener (onSocket: (socket: Socket) => void): Server {
  return netCreateServer({ allowHalfOpen: true, pauseOnConnect: true, noDelay: true }, onSocket)
}

/**
 * Runs the server side of a TLS handshake on an accepted socket (paused, possibly with bytes unshifted back into it).
 * Resolves with the TLS socket, paused, once the handshake is done (and the client certificate checked with
 * `--tls-client-ca`). Rejects with {@link ClientTlsError} when it fails or takes longer than `timeoutMs`; the
 * socket is destroyed then. Clears its timer and removes its listeners on every path.
 */
export function acceptTls (raw: Socket, tls: ServerTls, timeoutMs: number): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = new TLSSocket(raw, {
      isServer: true,
      secureContext: tls.context,
      requestCert: tls.requestCert,
      rejectUnauthorized: tls.requestCert,
    })
    // The TLS socket reads the TCP socket's handle itself; the TCP socket was accepted paused. Bytes already buffered
    // in it (a ClientHello that came in one read with a MySQL SSLRequest, given back with unshift) are handed to the
    // TLS socket on the next tick (initRead in Node's lib/_tls_wrap.js): resuming now would let them flow out of the
    // TCP socket, to nobody, first.
    if (raw.readableLength === 0) raw.resume()
    else process.nextTick(() => { raw.resume() })
    const cleanup = (): void => {
      clearTimeout(timer)
      socket.removeListener('secure', socketOnSecure)
      socket.removeListener('error', socketOnError)
      socket.removeListener('close', socketOnClose)
    }
    const fail = (err: ClientTlsError): void => {
      cleanup()
      socket.on('error', noop)
      socket.destroy()
      raw.destroy()
      reject(err)
    }
    const socketOnSecure = (): void => {
      // tls.Server checks the client's chain after the handshake (onServerSocketSecure in lib/_tls_wrap.js); a
      // TLSSocket made by hand must do it itself, or a certificate from any CA would be accepted.
      if (tls.requestCert) {
        // `ssl` is the TLSWrap (as `_handle` is on sockets tls.Server makes); verifyError() is null for a good chain.
        const wrap = socket as unknown as { ssl?: { verifyError (): Error | null } | null; _handle?: { verifyError? (): Error | null } | null }
        const check = wrap.ssl ?? wrap._handle
        const verifyError = typeof check?.verifyError === 'function' ? check.verifyError() : new Error('the TLS connection is gone')
        if (verifyError !== null) {
          fail(new ClientTlsError(`client TLS handshake failed: client certificate rejected: ${verifyError.message}`, { cause: verifyError }))
          return
        }
      }
      cleanup()
      socket.pause()
      resolve(socket)
    }
    const socketOnError = (err: Error): void => {
      fail(new ClientTlsError(`client TLS handshake failed: ${err.message}`, { cause: err }))
    }
    const socketOnClose = (): void => {
      fail(new ClientTlsError('client TLS handshake failed: the client closed the connection'))
    }
    const timer = setTimeout(() => fail(new ClientTlsError(`client TLS handshake failed: not done within ${timeoutMs}ms`)), timeoutMs)
    socket.once('secure', socketOnSecure)
    socket.on('error', socketOnError)
    socket.once('close', socketOnClose)
  })
}

function noop (): void {}
