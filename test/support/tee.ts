import { createDuplicator, type CreateDuplicatorOptions, type Duplicator, type MetricsSnapshot, type MirrorCounters } from '../../src/index.js'
import { waitFor } from '../helpers.js'
import type { TeardownTarget } from './redis.js'

/** tcptee in the test process, between a client and a main + mirrors on loopback. */
export interface Tee {
  readonly port: number
  readonly duplicator: Duplicator
  metrics (): MetricsSnapshot
  /** The counters of the first (in these tests: only) mirror. */
  mirror (): MirrorCounters
  /**
   * Resolves once every client connection and every mirror connection has closed, with the final
   * counters: from then on each mirror connection's fate is known.
   */
  idle (timeoutMs?: number): Promise<MetricsSnapshot>
}

/** `options` adds to (or overrides) the listen/main/mirrors options: `protocol`, `mirrorCredentials`, `diff`, `logger`. */
export async function startTee (t: TeardownTarget, mainPort: number, mirrorPorts: readonly number[], options: Partial<CreateDuplicatorOptions> = {}): Promise<Tee> {
  const duplicator = createDuplicator({
    listen: { host: '127.0.0.1', port: 0 },
    main: { host: '127.0.0.1', port: mainPort },
    mirrors: mirrorPorts.map((port) => ({ host: '127.0.0.1', port })),
    ...options,
  })
  const { port } = await duplicator.listen()
  t.teardown(() => duplicator.close(1_000))
  const mirror = (): MirrorCounters => {
    const first = Object.values(duplicator.metrics().mirrors)[0]
    if (first === undefined) throw new Error('tcptee has no mirror counters')
    return first
  }
  return {
    port,
    duplicator,
    metrics: () => duplicator.metrics(),
    mirror,
    idle: (timeoutMs = 30_000) => waitFor('tcptee to have no open connections', async () =>
      duplicator.connectionCount === 0 ? duplicator.metrics() : undefined, { timeoutMs }),
  }
}
