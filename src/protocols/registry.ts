import type { Config, MirrorSpec, ProtocolName, TlsMode } from '../config.js'
import type { SessionOpener } from '../datapath/session-opener.js'
import type { MainObserverFactory, StageFactory } from '../datapath/stage.js'
import type { MirrorCredentials } from '../mirrors/credentials.js'
import type { MirrorCounters } from '../ops/metrics.js'
import { postgresModule } from './postgres/index.js'
import { redisModule } from './redis/index.js'
import { httpModule } from './http/index.js'
import { mysqlModule } from './mysql/index.js'

/**
 * What `--protocol` plugs in: for each protocol tcptee speaks, what it does to mirror connections. The duplicator
 * asks the module of the configured protocol once per mirror target; `tcp` has none, and then nothing on the data
 * path changes. Owns only the table of modules; each module lives in `src/protocols/<name>/`.
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

const MODULES: Partial<Record<ProtocolName, ProtocolModule>> = {
  postgres: postgresModule,
  mysql: mysqlModule,
  redis: redisModule,
  http: httpModule,
}

/** The module of `name`; an empty one for `tcp` and protocols that rewrite nothing yet. */
export function protocolModule (name: ProtocolName): ProtocolModule {
  return MODULES[name] ?? {}
}
