import { BytesComparer } from './bytes-comparer.js'
import type { Comparer, ComparerHost } from './comparer.js'
import { FramedComparer } from './framed-comparer.js'
import { httpProtocol } from '../protocols/http/comparer.js'
import type { DiffConfig, DiffKind } from './outcome.js'
import { redisProtocol } from '../protocols/redis/comparer.js'
import { postgresProtocol } from '../protocols/postgres/comparer.js'
import { mysqlProtocol } from '../protocols/mysql/comparer.js'

export type { Comparer, ComparerHost, ReplySink } from './comparer.js'
export type { FramedProtocol, FramedPair, ReplyParser, Reply } from './framed-comparer.js'
export * from './outcome.js'
export { IgnoreList, resolveIgnoreList, type RequestName } from './request.js'

export { DEFAULT_IGNORE } from './default-ignore.js'

/**
 * The comparer registry: `--diff <kind>` -> a factory of one comparer per mirror connection.
 * Adding a protocol (mysql, postgres) is one FramedProtocol and one line here.
 */
const FACTORIES: Record<DiffKind, (settings: DiffConfig) => (host: ComparerHost) => Comparer> = {
  bytes: () => (host) => new BytesComparer(host),
  redis: (settings) => {
    const protocol = redisProtocol(settings.ignore)
    return (host) => new FramedComparer(protocol, host)
  },
  http: (settings) => {
    const protocol = httpProtocol(settings.ignoreHeaders, settings.ignore)
    return (host) => new FramedComparer(protocol, host)
  },
  postgres: (settings) => {
    // One backend message may not be larger than the window: it could not be held for comparison anyway.
    const protocol = postgresProtocol(settings.window, settings.ignore)
    return (host) => new FramedComparer(protocol, host)
  },
  mysql: (settings) => {
    const protocol = mysqlProtocol(settings.window, settings.ignore)
    return (host) => new FramedComparer(protocol, host)
  },
}

const factories = new WeakMap<DiffConfig, (host: ComparerHost) => Comparer>()

/** Creates the comparer for one mirror connection. */
export function createComparer (settings: DiffConfig, host: ComparerHost): Comparer {
  let f = factories.get(settings)
  if (f === undefined) {
    f = FACTORIES[settings.kind](settings)
    factories.set(settings, f)
  }
  return f(host)
}
