import type { Config, MirrorSpec, ProtocolName, TlsMode } from '../config.js'
import type { SessionOpener } from '../datapath/session-opener.js'
import type { MainObserverFactory, StageFactory } from '../datapath/stage.js'
import type { MirrorCredentials } from '../mirrors/credentials.js'
import type { MirrorCounters } from '../ops/metrics.js'

/**
 * What `--protocol` plugs in: for each protocol tcptee speaks, what it does to mirror connections. The duplicator
 * asks the module of the configured protocol once per mirror target; `tcp` has none, and then nothing on the data
 * path changes. Owns only the table of modules; each module lives in `src/protocols/<name>/` and is loaded when a
 * config names it ({@link loadProtocol}; the library entry loads them all), so a plain TCP duplicator does not carry
 * their code.
 */
export interface ProtocolModule {
  /**
   * The stage factory for one mirror target (login with the mirror's own credentials, request rewriting), or
   * undefined when this mirror's copies need no stage. Called when the target is added.
   */
  mirrorStage? (mirror: ProtocolMirror): StageFactory | undefined
  /** What watches each session's main path (read only), if the protocol needs to learn something from main. */
  readonly mainObserver?: MainObserverFactory | undefined
  /**
   * Opens each session before the data path relays anything (answers the client's TLS request, negotiates TLS with
   * main inside the protocol). With it, TLS to main and mirrors is negotiated in the protocol, never from the first
   * byte: the duplicator dials them in plain TCP and the opener and the mirror stages start TLS.
   */
  readonly openSession?: SessionOpener | undefined
}

/** One mirror target, as a protocol module sees it. */
export interface ProtocolMirror {
  /** The mirror's name (`host:port` as in `-m`): the key of its entry in the credentials file, and of its metrics. */
  readonly name: string
  readonly spec: MirrorSpec
  /** TLS toward this mirror (`--mirror-tls`, `tls://`). */
  readonly tls: TlsMode
  readonly config: Config
  /** The mirror's counters (a protocol counts what its stage leaves out: `requestsFiltered`, `requestsLimited`). */
  readonly counters?: MirrorCounters | undefined
  /** The credentials file as loaded now (it is re-read on SIGHUP); undefined without `--mirror-credentials`. */
  credentials (): MirrorCredentials | undefined
}

/** How to load each protocol's module: only the configured one is ever imported by the tcptee command. */
const LOADERS: Record<Exclude<ProtocolName, 'tcp'>, () => Promise<ProtocolModule>> = {
  postgres: async () => (await import('./postgres/index.js')).postgresModule,
  mysql: async () => (await import('./mysql/index.js')).mysqlModule,
  redis: async () => (await import('./redis/index.js')).redisModule,
  http: async () => (await import('./http/index.js')).httpModule,
}

const MODULES: Partial<Record<ProtocolName, ProtocolModule>> = {}

/** Makes `name`'s module available to {@link protocolModule}; loading it again is a no-op. */
export async function loadProtocol (name: ProtocolName): Promise<void> {
  if (name === 'tcp' || MODULES[name] !== undefined) return
  // A name that is no protocol is left to normalizeConfig, which rejects it naming --protocol.
  const loader = LOADERS[name] as (() => Promise<ProtocolModule>) | undefined
  if (loader !== undefined) MODULES[name] = await loader()
}

/** Registers modules imported statically (the library entry, src/protocols/all.ts). */
export function registerProtocols (modules: Partial<Record<ProtocolName, ProtocolModule>>): void {
  Object.assign(MODULES, modules)
}

/**
 * The module of `name`; an empty one for `tcp`. A protocol nobody loaded is a programming error (the tcptee command
 * and the library entry load what a config needs before a duplicator is created), not a config one.
 */
export function protocolModule (name: ProtocolName): ProtocolModule {
  if (name === 'tcp') return {}
  const loaded = MODULES[name]
  if (loaded === undefined) throw new Error(`protocol ${name}: its module is not loaded (await loadFeatures(config) before creating the duplicator)`)
  return loaded
}
