import { readFileSync } from 'node:fs'
import type { AddressInfo, Server, Socket } from 'node:net'
import type { Logger } from 'pino'
import { formatAddress, parseAddress, type Address } from './net/address.js'
import { afterLoopCheck, OwnEndpoints, sameEndpoint } from './mirrors/loop-guard.js'
import { acceptTls, createListener, loadCa, loadServerTls, type DialTarget, type DialTls, type ServerTls, type TlsMode } from './net/transport.js'
import {
  configValue,
  mirrorProxyVersion,
  mirrorTlsMode,
  normalizeConfig,
  parseMirrorSpec,
  parsePercent,
  type Config,
  type DuplicatorOptions,
  type MirrorSpec,
} from './config.js'
import { flagName, OPTIONS, restartOptions } from './options.js'
import { Connection, type ConnectionContext, type ConnectionOptions } from './datapath/connection.js'
import { TcpMirrorOutput, type MirrorSettings } from './datapath/mirror-output.js'
import type { MirrorOutput, OutputSession } from './datapath/output.js'
import { socketPeer, type SessionPeer, type SessionSource } from './datapath/session-source.js'
import type { StageFactory } from './datapath/stage.js'
import { WriteCoalescer } from './datapath/write-coalescer.js'
import { briefError, ConfigError, ListenError } from './ops/errors.js'
import { silentLogger } from './ops/logger.js'
import { RateLimitedLog } from './ops/rate-limited-log.js'
import { Metrics, type MetricsSnapshot } from './ops/metrics.js'
import { VERSION } from './ops/version.js'
import { MirrorSet, type MirrorInfo, type MirrorTarget, type TargetWiring } from './mirrors/mirror-set.js'
import { makeTrustCheck, ProxyProtocolError, readProxyHeader } from './protocols/proxy/index.js'
import { ProxyHeaderStage, proxyHeaderFor } from './protocols/proxy/stage.js'
import type { Recorder, RecordFs } from './record/recorder.js'
import { recorderClass } from './features.js'
import { createSampler } from './mirrors/sampling.js'
import { protocolModule, type ProtocolMirror } from './protocols/registry.js'
import { loadCredentials, type MirrorCredentials } from './mirrors/credentials.js'
import { chainStages, type MirrorStage } from './datapath/stage.js'
import { SessionOpenError, type OpenedSession, type SessionOpener } from './datapath/session-opener.js'

export interface CreateDuplicatorOptions extends DuplicatorOptions {
  /** pino logger; default silent. Per-connection child loggers carry `conn` and `client`. */
  logger?: Logger
  /** The admin endpoint's address (the CLI's `--admin`), so that a mirror at it is refused like one at `listen`. */
  admin?: Address | string | undefined
  /** `record`: the file operations of the recorder (tests pass slow or failing ones). */
  recordFs?: RecordFs
}

const LISTEN_ERRORS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EACCES: 'permission denied',
  EADDRNOTAVAIL: 'address not available on this host',
  ENOTFOUND: 'host not found',
  EAI_AGAIN: 'host name lookup failed',
}

/**
 * A TCP duplicator: owns the listening server and the Set of live connections.
 * Create it with {@link createDuplicator}.
 */
export class Duplicator {
  readonly config: Config
  private readonly log: Logger
  private readonly metricsStore = new Metrics()
  private readonly mirrorSet: MirrorSet
  private readonly connections = new Set<Connection>()
  private readonly server: Server
  /** Batches mirror writes (`mirrorBatch`); undefined when batching is off. */
  private readonly coalescer: WriteCoalescer | undefined
  private readonly mirrorSettings: MirrorSettings
  /** Built once: what every connection shares. */
  private readonly connectionContext: ConnectionContext
  /** `--tls-cert`: client TLS, replaced on reload; undefined: clients speak plain TCP. */
  private serverTls: ServerTls | undefined
  /** `--tls-ca`, read once. */
  private readonly tlsCa: Buffer | undefined
  /** `--mirror-credentials`, as read at start or the last reload; undefined without it. */
  private credentials: MirrorCredentials | undefined
  /** `--proxy-protocol-in`: whether a peer may send a PROXY header; undefined when headers are not expected. */
  private readonly proxyTrusted: ((remoteAddress: string | undefined) => boolean) | undefined
  /** Accepted sockets whose PROXY header or TLS handshake is still being read: owned here until a session starts. */
  private readonly accepting = new Set<Socket>()
  private nextId = 1
  private closing: Promise<void> | undefined
  private shutdownTimer: NodeJS.Timeout | undefined
  private bound: Address | undefined
  /** Set by listen(): the resolved addresses a mirror must not be (a mirror loop); see mirrors/loop-guard.ts. */
  private own: OwnEndpoints | undefined
  private readonly adminAddress: Address | undefined
  /** `--protocol`'s session opener (TLS negotiated inside the protocol); undefined: sessions start at once. */
  private readonly opener: SessionOpener | undefined
  /** Mirrors whose loop was logged: once each. */
  private readonly loopsLogged = new Set<string>()
  /** `--record`: the recording file and its queue; undefined when off. */
  private readonly recorder: Recorder | undefined

  constructor (options: CreateDuplicatorOptions) {
    this.config = normalizeConfig(options)
    this.coalescer = this.config.mirrorBatch > 0 ? new WriteCoalescer(this.config.mirrorBatch) : undefined
    this.mirrorSettings = Object.freeze({
      maxQueueBytes: this.config.mirrorBuffer,
      writeTimeout: this.config.mirrorWriteTimeout,
      connectTimeout: this.config.mirrorConnectTimeout,
      coalescer: this.coalescer,
    })
    this.log = options.logger ?? silentLogger()
    const admin = options.admin
    this.adminAddress = typeof admin === 'string' ? parseAddress(admin, flagName('admin'), '127.0.0.1', true) : admin
    const c = this.config
    // Files are read (and checked) before anything is opened: a bad certificate fails here, naming its option.
    this.serverTls = c.tls === undefined ? undefined : loadServerTls(c.tls)
    this.tlsCa = c.tlsCa === undefined ? undefined : loadCa(c.tlsCa)
    this.credentials = this.readCredentials(c.mirrorCredentials)
    this.proxyTrusted = c.proxyProtocolIn ? makeTrustCheck(c.proxyProtocolFrom) : undefined
    const mainVersion = c.proxyProtocolOut
    this.opener = protocolModule(c.protocol).openSession
    // `prefer` needs the server to be asked first, inside the protocol: only a protocol with a session opener does.
    for (const key of ['mainTls', 'mirrorTls'] as const) {
      if (c[key] === 'prefer' && this.opener === undefined) {
        throw new ConfigError(`${key} prefer: protocol ${c.protocol} does not negotiate TLS inside the protocol yet`, flagName(key), { key, render: (n) => `${n(key)} prefer: ${n('protocol')} ${c.protocol} does not negotiate TLS inside the protocol yet` })
      }
    }
    // Opened now, like the certificate files: a path that cannot be written fails at start, naming --record.
    this.recorder = c.record === undefined
      ? undefined
      : new (recorderClass())(c.record, () => this.mirrorSet.percent, createSampler(c.seed === undefined ? undefined : c.seed + 1), this.metricsStore, this.log, options.recordFs)
    const recorder = this.recorder
    this.connectionContext = Object.freeze({
      config: c,
      metrics: this.metricsStore,
      log: this.log,
      // With a session opener TLS to main is negotiated inside the protocol: main is dialled in plain TCP.
      main: Object.freeze({ address: c.main, tls: this.opener === undefined ? this.dialTls(c.mainTls) : undefined }),
      mainHeader: mainVersion === undefined ? undefined : (peer: SessionPeer) => proxyHeaderFor(mainVersion, peer),
      onClose: this.connectionOnClose,
      record: recorder === undefined ? undefined : (id: number, peer: SessionPeer) => recorder.open(id, peer),
      mainObserver: protocolModule(c.protocol).mainObserver,
    })
    const health = { retryDelay: c.retryDelay, failAfter: c.failAfter, cutOffThreshold: c.cutOffThreshold }
    this.mirrorSet = new MirrorSet(health, this.metricsStore, this.log, c.percent, c.seed, this.wiring)
    this.mirrorSet.split = c.mirrorSplit
    for (const spec of c.mirrorSpecs) this.mirrorSet.add(spec)
    this.mirrorSet.diffEnabled = c.diff !== undefined
    // --diff-baseline: a target like a mirror that every connection uses (100%), compared as the measure of noise.
    const baseline = c.diff?.baseline
    if (baseline !== undefined) this.mirrorSet.add(Object.freeze({ address: baseline, percent: 100, origin: 'command-line', tls: false, proxy: undefined, baseline: true }))
    this.server = createListener(this.serverOnConnection)
    this.server.on('error', this.serverOnError)
    // --max-connections: Node closes a client accepted beyond it at once and tells us with 'drop'.
    if (c.maxConnections !== undefined) {
      this.server.maxConnections = c.maxConnections
      this.server.on('drop', this.serverOnDrop)
    }
  }

  /** Reads `--mirror-credentials` (undefined: none); warns when others can read the passwords in it. */
  private readCredentials (file: string | undefined): MirrorCredentials | undefined {
    if (file === undefined) return undefined
    const loaded = loadCredentials(file)
    if (loaded.readableByOthers) this.log.warn({ file }, 'the mirror credentials file can be read by other users: chmod 600 it')
    return loaded.credentials
  }

  /** TLS settings for a dial in `mode`; undefined for plain TCP. */
  private dialTls (mode: TlsMode): DialTls | undefined {
    if (mode === 'off') return undefined
    return Object.freeze({ verify: mode === 'verify', ca: this.tlsCa, servername: this.config.tlsServername })
  }

  /** How each mirror target opens its outputs and makes its stages, from its spec and the config. */
  private readonly wiring: TargetWiring = {
    output: (target: MirrorTarget) => {
      const tls = this.dialTls(mirrorTlsMode(target.spec, this.config))
      // A protocol that negotiates TLS inside itself (its stage sends the request) dials in plain TCP.
      const inProtocol = this.opener !== undefined
      const dialTarget: DialTarget = Object.freeze({ address: target.address, tls: inProtocol ? undefined : tls })
      const tcpTarget = { name: target.name, dial: dialTarget, counters: target.counters, health: target.health, stageTls: inProtocol ? tls : undefined }
      const settings = this.mirrorSettings
      return (session: OutputSession): MirrorOutput => new TcpMirrorOutput(tcpTarget, settings, session)
    },
    stages: (spec: MirrorSpec): StageFactory | undefined => {
      const version = mirrorProxyVersion(spec, this.config)
      const mirror: ProtocolMirror = {
        name: formatAddress(spec.address),
        spec,
        tls: mirrorTlsMode(spec, this.config),
        config: this.config,
        counters: this.metricsStore.mirror(formatAddress(spec.address)),
        credentials: () => this.credentials,
      }
      const protocol = protocolModule(this.config.protocol).mirrorStage?.(mirror)
      if (version === undefined) return protocol
      if (protocol === undefined) return (session) => new ProxyHeaderStage(version, session)
      // The protocol stage sees the client's bytes first; the PROXY header stage is next to the socket, so the
      // header goes out before anything the protocol stage sends.
      return (session) => {
        const first = protocol(session)
        const header: MirrorStage = new ProxyHeaderStage(version, session)
        return first === undefined ? header : chainStages([first, header])
      }
    },
  }

  /** Starts accepting. Resolves with the bound address; rejects with {@link ListenError}. */
  listen (): Promise<Address> {
    const { host, port } = this.config.listen
    return new Promise((resolve, reject) => {
      const onError = (err: NodeJS.ErrnoException): void => {
        this.server.removeListener('listening', onListening)
        const why = LISTEN_ERRORS[err.code ?? ''] ?? err.message
        reject(new ListenError(`cannot listen on ${formatAddress(this.config.listen)}: ${why}`, { cause: err }))
      }
      const onListening = (): void => {
        this.server.removeListener('error', onError)
        const bound = this.server.address() as AddressInfo
        const a: Address = Object.freeze({ host: bound.address, port: bound.port })
        this.bound = a
        // A mirror that resolves to ourselves or main would copy every byte back to us until descriptors run out.
        void this.refuseOwnMirrors(this.bound).then(() => {
          this.log.info({
            version: VERSION,
            listen: formatAddress(a),
            main: formatAddress(this.config.main),
            mirrors: this.config.mirrors.map(formatAddress),
            mirrorBuffer: this.config.mirrorBuffer,
            // Only what differs from plain TCP, so that the usual line stays short.
            ...(this.serverTls === undefined ? {} : { clientTls: this.serverTls.requestCert ? 'client-certificates' : 'on' }),
            ...(this.config.mainTls === 'off' ? {} : { mainTls: this.config.mainTls }),
            ...(this.proxyTrusted === undefined ? {} : { proxyProtocolIn: this.config.proxyProtocolFrom.length === 0 ? 'any peer' : this.config.proxyProtocolFrom }),
            ...(this.config.proxyProtocolOut === undefined ? {} : { proxyProtocolOut: this.config.proxyProtocolOut }),
            ...(this.config.diff === undefined ? {} : { diff: this.config.diff.kind }),
            ...(this.config.diff?.baseline === undefined ? {} : { diffBaseline: formatAddress(this.config.diff.baseline) }),
          }, 'listening')
          this.warnDescriptors()
          resolve(a)
        }, (err: unknown) => {
          this.server.close()
          reject(err)
        })
      }
      this.server.once('error', onError)
      this.server.once('listening', onListening)
      this.server.listen({ host, port })
    })
  }

  /** Warns when `ulimit -n` cannot hold --max-connections clients (or has no room to spare without a cap). */
  private warnDescriptors (): void {
    const limit = descriptorLimit()
    if (limit === undefined) return
    const perClient = descriptorsPerClient(this.config.mirrors.length)
    const max = this.config.maxConnections
    const fits = Math.max(0, Math.floor((limit - DESCRIPTOR_RESERVE) / perClient))
    if (max !== undefined && max > fits) {
      this.log.warn({ descriptorLimit: limit, maxConnections: max, perClient, fits },
        `descriptor limit ${limit} (ulimit -n) holds only ${fits} clients at ${perClient} descriptors each (2 + mirrors), below --max-connections ${max}: raise ulimit -n to ${max * perClient + DESCRIPTOR_RESERVE}`)
    }
  }

  /** Resolves the addresses a mirror must not be, then checks the configured mirrors (rejects with ConfigError). */
  private async refuseOwnMirrors (bound: Address): Promise<void> {
    const own = await OwnEndpoints.resolve(bound, this.config.main, this.adminAddress)
    for (const spec of this.config.mirrorSpecs) await own.check(spec.address, 'mirrors')
    if (this.config.diff?.baseline !== undefined) await own.check(this.config.diff.baseline, 'diffBaseline')
    this.own = own
  }

  /**
   * A mirror added or reloaded at run time: an IP literal or `localhost` that is ourselves or main throws at once; a
   * host name is resolved afterwards and the mirror removed if it is (until then the loop detector stands guard).
   */
  private refuseOwnMirror (spec: MirrorSpec, key: string): void {
    const own = this.own
    if (own === undefined || own.checkSync(spec.address, key)) return
    own.check(spec.address, key).catch((err: unknown) => {
      this.log.error({ err }, `mirror refused: ${(err as Error).message}`)
      this.mirrorSet.remove(formatAddress(spec.address), (err as Error).message)
    })
  }

  /** The bound address once listening. */
  address (): Address | undefined {
    return this.bound
  }

  /** A copy of the live counters. */
  metrics (): MetricsSnapshot {
    this.mirrorSet.prune()
    const snap = this.metricsStore.snapshot()
    // Queue fill, read now from the open mirror connections (one pass; a scrape, not the data path).
    for (const m of Object.values(snap.mirrors)) { m.queuedBytes = 0; m.queueLimitBytes = 0 }
    const limit = this.config.mirrorBuffer
    for (const conn of this.connections) {
      conn.forEachQueue((name, queued) => {
        const m = snap.mirrors[name]
        if (m === undefined) return
        m.queuedBytes! += queued
        m.queueLimitBytes! += limit
      })
    }
    return snap
  }

  /** Every mirror target, active and removed, with its origin, state, sampling and counters. */
  listMirrors (): MirrorInfo[] {
    return this.mirrorSet.list()
  }

  /** Validates a mirror address (and percentage) as addMirror would, without adding it; returns its canonical name. Throws ConfigError. */
  checkMirror (address: Address | string, percent?: number | string): string {
    const spec = parseRuntimeMirror(address, percent, this.config)
    this.own?.checkSync(spec.address, 'mirror')
    return formatAddress(spec.address)
  }

  /**
   * Adds a mirror at run time (idempotent; for a mirror already present only `percent` changes). Connections
   * accepted from now on mirror to it, from their first byte; open connections do not. Throws ConfigError on a bad
   * address or percentage, or when the address is the main server. Returns whether it was new.
   */
  addMirror (address: Address | string, percent?: number | string): boolean {
    const spec = parseRuntimeMirror(address, percent, this.config)
    this.refuseOwnMirror(spec, 'mirror')
    return this.mirrorSet.add(spec)
  }

  /**
   * Removes a mirror: connections accepted from now on do not mirror to it and its open mirror connections are
   * ended cleanly (FIN after their queued bytes). Returns false when it was not an active mirror.
   */
  removeMirror (address: Address | string): boolean {
    const spec = parseRuntimeMirror(address, undefined, this.config)
    return this.mirrorSet.remove(formatAddress(spec.address), 'removed through the admin API')
  }

  /** The global sampling percentage (`--percent`); setting it applies to connections accepted from now on. */
  get percent (): number {
    return this.mirrorSet.percent
  }

  set percent (p: number) {
    this.mirrorSet.percent = p
  }

  /**
   * Applies a reloaded configuration. Options whose reload rule (src/options.ts) is `apply` are applied: the
   * command-line and config mirrors and the sampling percentage (open client connections are untouched; mirrors added
   * at run time stay). Options whose rule is `restart` are compared and returned by key when they differ, and are not
   * applied. Throws ConfigError, and changes nothing, when the options do not validate.
   */
  reconfigure (options: DuplicatorOptions): { restartNeeded: string[] } {
    const next = normalizeConfig(options)
    for (const spec of next.mirrorSpecs) this.refuseOwnMirror(spec, 'mirrors')
    const restartNeeded = restartOptions('library')
      .filter((o) => JSON.stringify(configValue(this.config, o.key)) !== JSON.stringify(configValue(next, o.key)))
      .map((o) => o.key)
    // Client TLS: the files are read again (a renewed certificate); new handshakes use them, open sessions keep theirs.
    // Read first: a bad file rejects the whole reload with nothing applied. Turning TLS on or off needs a restart.
    if ((next.tls === undefined) !== (this.serverTls === undefined)) restartNeeded.push('tlsCert')
    else if (next.tls !== undefined) this.serverTls = loadServerTls(next.tls)
    // Mirror credentials: read again even when the path is the same (a rotated password). New mirror logins use them.
    const credentials = this.readCredentials(next.mirrorCredentials)
    for (const o of OPTIONS) {
      if (o.scope !== 'library' || o.reload !== 'apply') continue
      switch (o.key) {
        case 'mirrors': this.mirrorSet.sync(next.mirrorSpecs); break
        case 'percent': this.mirrorSet.percent = next.percent; break
        // Client TLS files are paths in the config; the TLS listener reads them again on each reload.
        case 'tlsCert': case 'tlsKey': case 'tlsClientCa': break // read above, before anything is applied
        case 'mirrorCredentials': this.credentials = credentials; break
        // An option marked `apply` that nothing applies would be silently ignored on reload: fail loudly instead.
        default: throw new Error(`option ${o.key} has reload rule "apply" but Duplicator.reconfigure does not apply it`)
      }
    }
    return { restartNeeded }
  }

  /** Number of open connections (client sessions plus mirrors still flushing). */
  get connectionCount (): number {
    return this.connections.size
  }

  /**
   * Stops accepting at once; open connections get `shutdownTimeout` to finish, then the rest are destroyed.
   * Resolves when every connection is gone. Calling it again returns the same promise.
   * @param deadlineMs overrides `shutdownTimeout` (0 destroys everything at once).
   */
  close (deadlineMs: number = this.config.shutdownTimeout): Promise<void> {
    this.closing ??= new Promise<void>((resolve) => {
      const open = this.connections.size
      if (this.bound !== undefined) this.log.info({ open, deadlineMs }, 'shutting down: no longer accepting')
      const serverClosed = new Promise<void>((r) => this.server.close(() => r()))
      // Clients still sending their PROXY header or TLS handshake have no session yet: nothing of theirs to finish.
      for (const raw of this.accepting) raw.destroy()
      this.accepting.clear()
      const drained = new Promise<void>((r) => {
        this.drainResolve = r
        this.checkDrained()
      })
      if (open > 0) {
        this.shutdownTimer = setTimeout(this.shutdownTimerOnTimeout, deadlineMs)
      }
      void Promise.all([serverClosed, drained]).then(() => this.recorder?.close()).then(() => {
        clearTimeout(this.shutdownTimer)
        this.coalescer?.close()
        this.shutdownTimer = undefined
        if (this.bound !== undefined) this.log.info('closed')
        resolve()
      })
    })
    return this.closing
  }

  /** Destroys every open connection now (the shutdown deadline, or a second signal). */
  destroyAll (): void {
    const n = this.connections.size
    if (n > 0) this.log.warn({ destroyed: n }, 'destroying connections still open')
    for (const c of [...this.connections]) c.destroy()
  }

  private drainResolve: (() => void) | undefined

  private checkDrained (): void {
    if (this.drainResolve !== undefined && this.connections.size === 0) {
      const r = this.drainResolve
      this.drainResolve = undefined
      r()
    }
  }

  private readonly shutdownTimerOnTimeout = (): void => {
    this.shutdownTimer = undefined
    this.destroyAll()
  }

  private readonly serverOnConnection = (socket: Socket): void => {
    if (this.closing !== undefined) {
      socket.destroy()
      return
    }
    afterLoopCheck(socket, this.serverOnClient, this.cutLoop)
  }

  /** An accepted client that is not one of our own mirror connections. */
  private readonly serverOnClient = (socket: Socket): void => {
    if (this.closing !== undefined) {
      socket.destroy()
      return
    }
    // Plain TCP without PROXY headers: the session starts now, with nothing in between.
    if (this.proxyTrusted === undefined && this.serverTls === undefined && this.opener === undefined) {
      this.startSession(socket, socketPeer(socket), undefined)
      return
    }
    void this.acceptSlowly(socket)
  }

  /** A client that is one of this process's own mirror connections: cut off before main is dialled, counted, logged once per mirror. */
  private readonly cutLoop = (socket: Socket, mirror: string): void => {
    socket.on('error', noop)
    socket.destroy()
    this.metricsStore.loopsCut++
    if (this.loopsLogged.has(mirror)) return
    this.loopsLogged.add(mirror)
    this.log.error({ mirror, client: `${socket.remoteAddress}:${socket.remotePort}` }, `mirror loop: a connection from our own mirror connection to ${mirror} was cut off`)
  }

  /**
   * A client that first sends a PROXY header, or speaks TLS, or both (the header comes first on the wire). The socket
   * is owned here (in `accepting`, destroyed by close) until its session starts. A failure is logged once, counted,
   * and the client is closed; nothing was sent to main or mirrors yet.
   */
  private async acceptSlowly (raw: Socket): Promise<void> {
    this.accepting.add(raw)
    let peer = socketPeer(raw)
    let source: SessionSource = raw
    let check: ConnectionOptions['firstChunkCheck']
    try {
      if (this.proxyTrusted !== undefined) {
        if (this.proxyTrusted(raw.remoteAddress)) {
          const { header, rest } = await readProxyHeader(raw, { timeoutMs: this.config.connectTimeout })
          if (rest.length > 0) raw.unshift(rest)
          if (header.command === 'proxy' && header.source !== undefined) {
            peer = { client: header.source, local: header.destination ?? peer.local }
          }
        } else {
          check = this.refuseProxyHeader
        }
      }
      const tls = this.serverTls
      if (this.opener !== undefined) {
        const opened = await this.openSession(raw, peer)
        if (opened === undefined) {
          this.accepting.delete(raw)
          return
        }
        source = opened.source
        this.accepting.delete(raw)
        if (this.closing !== undefined) {
          source.destroy()
          opened.main?.destroy()
          return
        }
        this.startSession(source, peer, check, opened)
        return
      }
      if (tls !== undefined) source = await acceptTls(raw, tls, this.config.connectTimeout)
    } catch (err) {
      this.accepting.delete(raw)
      raw.on('error', noop)
      raw.destroy()
      if (err instanceof SessionOpenError) {
        if (err.end === 'client-error') this.metricsStore.clientTlsFailures++
        else this.metricsStore.mainConnectFailures++
        if (this.closing === undefined) {
          this.log.warn({ client: `${peer.client.address}:${peer.client.port}`, end: err.end, err: err.error }, err.end === 'client-error'
            ? 'client TLS handshake failed; connection closed'
            : err.end === 'main-tls-failed' ? 'session not opened: main could not be reached as --main-tls asks; client closed' : 'session not opened: main could not be reached; client closed')
        }
        return
      }
      const tlsFailed = !(err instanceof ProxyProtocolError)
      if (tlsFailed) this.metricsStore.clientTlsFailures++
      else this.metricsStore.proxyHeaderRefused++
      if (this.closing === undefined) {
        this.log.warn({ client: `${peer.client.address}:${peer.client.port}`, err: briefError(err) }, tlsFailed ? 'client TLS handshake failed; connection closed' : 'PROXY header refused; connection closed')
      }
      return
    }
    this.accepting.delete(raw)
    if (this.closing !== undefined) {
      source.destroy()
      return
    }
    this.startSession(source, peer, check)
  }

  /** A PROXY header from a peer outside `--proxy-protocol-from`: refused (the session logs it as its error) and counted. */
  private readonly refuseProxyHeader = (chunk: Buffer): Error | undefined => {
    if (!startsWithProxySignature(chunk)) return undefined
    this.metricsStore.proxyHeaderRefused++
    return new ProxyProtocolError('bad-signature', 'PROXY header from a peer not in --proxy-protocol-from: refused')
  }

  /** Runs the protocol's session opener on an accepted client (the PROXY header, if any, already read). */
  private openSession (raw: Socket, peer: SessionPeer): Promise<OpenedSession | undefined> {
    const c = this.config
    return this.opener!({
      client: raw,
      clientTls: this.serverTls,
      main: this.connectionContext.main,
      mainTls: { mode: c.mainTls, settings: this.dialTls(c.mainTls) },
      mainHeader: this.connectionContext.mainHeader?.(peer),
      timeoutMs: c.connectTimeout,
      log: this.log.child({ client: `${peer.client.address}:${peer.client.port}` }),
    })
  }

  private startSession (source: SessionSource, peer: SessionPeer, firstChunkCheck: ConnectionOptions['firstChunkCheck'], opened?: OpenedSession): Connection {
    const plan = this.mirrorSet.plan(Date.now())
    const opts: ConnectionOptions = {
      ...(firstChunkCheck === undefined ? {} : { firstChunkCheck }),
      ...(opened === undefined ? {} : { main: opened.main, mainToClient: opened.mainToClient, clientToMain: opened.clientToMain, mainSent: opened.mainSent, mainResetAfterClientEndIsClose: opened.mainResetAfterClientEndIsClose }),
    }
    const conn = new Connection(this.nextId++, source, peer, plan, this.connectionContext, opts)
    this.connections.add(conn)
    return conn
  }

  /**
   * Runs a session whose client side is `source` rather than an accepted socket: a recorded session played back,
   * or a stream from elsewhere. It goes through the same path as a live client: main, the mirrors with their stages,
   * comparison, metrics, shutdown. `source` must be paused; the session resumes it once main is connected.
   * Returns false, and destroys the source, when the duplicator is already closing, or when its protocol negotiates
   * TLS to main inside the protocol (`--protocol postgres` or `mysql` with `--main-tls` on): that needs the session opener, which
   * works on accepted sockets only, and main must never get the session in plain text instead.
   */
  handle (source: SessionSource, peer: SessionPeer = { client: { address: 'session', port: 0 }, local: { address: 'session', port: 0 } }): boolean {
    if (this.closing !== undefined || (this.opener !== undefined && this.config.mainTls !== 'off')) {
      if (this.closing === undefined) this.log.error({ protocol: this.config.protocol, mainTls: this.config.mainTls }, 'a session from a source other than a client socket cannot negotiate TLS with main inside the protocol: refused')
      source.destroy()
      return false
    }
    this.startSession(source, peer, undefined)
    return true
  }

  private readonly connectionOnClose = (conn: Connection): void => {
    this.connections.delete(conn)
    this.metricsStore.observeDuration(conn.durationMs / 1000)
    this.checkDrained()
  }

  private readonly serverOnError = (err: Error): void => {
    // After listening, accept errors (EMFILE, ...) are counted and logged (rate-limited); the server keeps going.
    // libuv also closes clients it cannot accept for want of a descriptor without telling us: --max-connections
    // (sized with the start-up warning) is what keeps the process below its descriptor limit.
    if (this.bound === undefined) return
    this.metricsStore.acceptFailures++
    this.acceptLog.hit(this.log, { err, errno: (err as NodeJS.ErrnoException).code }, 'accept failed (out of descriptors?); see --max-connections and ulimit -n')
  }

  private readonly serverOnDrop = (): void => {
    this.metricsStore.clientsOverLimit++
    this.overLimitLog.hit(this.log, { maxConnections: this.config.maxConnections }, 'client closed at accept: --max-connections clients are open')
  }

  /** Accept failures and clients over --max-connections: one log line per 10 s at most, with the count since the last. */
  private readonly acceptLog = new RateLimitedLog(10_000)
  private readonly overLimitLog = new RateLimitedLog(10_000)
}

function noop (): void {}

/** The soft limit of open descriptors of this process (`ulimit -n`), from /proc/self/limits; undefined elsewhere. */
export function descriptorLimit (): number | undefined {
  try {
    const m = /^Max open files\s+(\d+|unlimited)/m.exec(readFileSync('/proc/self/limits', 'latin1'))
    if (m === null || m[1] === 'unlimited') return undefined
    return Number(m[1])
  } catch {
    return undefined
  }
}

/** Descriptors a client connection holds: its socket, main's, one per mirror. */
export function descriptorsPerClient (mirrors: number): number {
  return 2 + mirrors
}

/** Descriptors kept aside for listeners, the admin endpoint, logs and Node itself. */
const DESCRIPTOR_RESERVE = 64

const V1_SIGNATURE = Buffer.from('PROXY ', 'latin1')
const V2_SIGNATURE = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a])

/**
 * `--proxy-protocol-from`: whether a first chunk from a peer outside the list starts with a whole PROXY signature.
 * Only a whole signature counts: an ordinary client whose first chunk is `P` or `\r\n` must not be refused. A forger
 * who splits the signature over two chunks gains nothing: main and mirrors get those bytes as ordinary data (after
 * our own header with `--proxy-protocol-out`).
 */
function startsWithProxySignature (chunk: Buffer): boolean {
  return (chunk.length >= V1_SIGNATURE.length && chunk.subarray(0, V1_SIGNATURE.length).equals(V1_SIGNATURE)) ||
    (chunk.length >= V2_SIGNATURE.length && chunk.subarray(0, V2_SIGNATURE.length).equals(V2_SIGNATURE))
}

/** Validates a mirror added at run time (admin API); shared with the cluster primary, which checks before it asks its workers. */
export function parseRuntimeMirror (address: Address | string, percent: number | string | undefined, config: Config): MirrorSpec {
  const text = typeof address === 'string' ? address : formatAddress(address)
  let spec = parseMirrorSpec(text, 'runtime', 'mirror')
  if (percent !== undefined) spec = { ...spec, percent: parsePercent(percent, 'percent') }
  if (sameEndpoint(spec.address, config.main)) {
    throw new ConfigError(`mirror: ${formatAddress(spec.address)} is the main server`, 'mirror')
  }
  return spec
}

/**
 * Creates a duplicator. Validates the options at once (throws {@link ConfigError}); call `listen()` to start.
 * @example
 * const dup = createDuplicator({ listen: ':8080', main: ':8081', mirrors: [':8082'] })
 * const { port } = await dup.listen()
 */
export function createDuplicator (options: CreateDuplicatorOptions): Duplicator {
  return new Duplicator(options)
}
