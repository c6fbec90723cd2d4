// What the benchmark compares (setups) and the workloads it runs (scenarios).

/** What stands behind one mirror address. In bulk scenarios 'echo' mirrors become sinks. */
export type MirrorKind = 'echo' | 'stall' | 'refused'

export interface Setup {
  name: string
  /** none: the client talks to main directly (the ceiling). */
  proxy: 'none' | 'tcptee' | 'naive' | 'peer'
  mirrors: MirrorKind[]
  /** For proxy 'peer': command template with {listen}, {main}, {mirror}. */
  template?: string
  /** For proxy 'tcptee': extra flags of this setup (a variant), before --tcptee-args. */
  args?: string[]
}

export interface Scenario {
  name: string
  description: string
  parallel: number
  size: number
  /** Ping-pong: run time. Bulk: the client's time limit. */
  durationMs: number
  /** Bulk only: bytes per connection. */
  bulkBytes?: number
}

/** The built-in setups, then two per peer (one echoing mirror, one stalled mirror). */
export function setups (peers: Array<[string, string]>): Setup[] {
  const list: Setup[] = [
    { name: 'direct', proxy: 'none', mirrors: [] },
    { name: 'tcptee-1-mirror', proxy: 'tcptee', mirrors: ['echo'] },
    { name: 'tcptee-2-mirrors', proxy: 'tcptee', mirrors: ['echo', 'echo'] },
    { name: 'tcptee-stalled-mirror', proxy: 'tcptee', mirrors: ['stall'] },
    { name: 'tcptee-refused-mirror', proxy: 'tcptee', mirrors: ['refused'] },
    // Variants of the 1-mirror setup: what batching mirror writes buys, two worker processes, reply comparison on.
    { name: 'tcptee-1-mirror-nobatch', proxy: 'tcptee', mirrors: ['echo'], args: ['--mirror-batch', '0'] },
    { name: 'tcptee-1-mirror-2workers', proxy: 'tcptee', mirrors: ['echo'], args: ['--workers', '2'] },
    // --diff bytes reads and compares every mirror reply; the window is raised so bulk runs are compared, not abandoned.
    { name: 'tcptee-1-mirror-diff', proxy: 'tcptee', mirrors: ['echo'], args: ['--diff', 'bytes', '--diff-window', '16MiB'] },
    // A per-mirror stage (the PROXY v2 header stage): what the stage seam costs once it has done its work.
    { name: 'tcptee-1-mirror-stage', proxy: 'tcptee', mirrors: ['echo'], args: ['--mirror-proxy-protocol', 'v2'] },
    // --record: every connection also written to a pcapng file ({tmp} is a temporary directory of the run).
    { name: 'tcptee-1-mirror-record', proxy: 'tcptee', mirrors: ['echo'], args: ['--record', '{tmp}/bench.pcapng'] },
    { name: 'naive-1-mirror', proxy: 'naive', mirrors: ['echo'] },
    { name: 'naive-stalled-mirror', proxy: 'naive', mirrors: ['stall'] }
  ]
  for (const [name, template] of peers) {
    list.push({ name: `${name}-1-mirror`, proxy: 'peer', mirrors: ['echo'], template })
    list.push({ name: `${name}-stalled-mirror`, proxy: 'peer', mirrors: ['stall'], template })
  }
  return list
}

export interface Timing {
  rounds: number
  pingPongMs: number
  bulkBytes: number
  bulkLimitMs: number
  /** Client --grace: how long in-flight echoes may take after the run. */
  graceMs: number
  /** Client --stall-timeout for bulk runs. */
  stallTimeoutMs: number
  /** Client --warmup for ping-pong runs (not measured). */
  warmupMs: number
}

export const TIMINGS: Record<'full' | 'quick' | 'smoke', Timing> = {
  full: { rounds: 3, pingPongMs: 3000, bulkBytes: 1024 ** 3, bulkLimitMs: 30_000, graceMs: 2000, stallTimeoutMs: 3000, warmupMs: 1000 },
  quick: { rounds: 3, pingPongMs: 250, bulkBytes: 64 * 1024 ** 2, bulkLimitMs: 5000, graceMs: 300, stallTimeoutMs: 1000, warmupMs: 100 },
  // Smoke runs inside the test suite, on a loaded machine: generous limits, so only a real stall fails it.
  smoke: { rounds: 1, pingPongMs: 300, bulkBytes: 16 * 1024 ** 2, bulkLimitMs: 15_000, graceMs: 2000, stallTimeoutMs: 5000, warmupMs: 200 }
}

export function scenarios (timing: Timing): Scenario[] {
  return [
    { name: 'pingpong-10', description: 'ping-pong, 1 KiB lines, 10 connections', parallel: 10, size: 1024, durationMs: timing.pingPongMs },
    { name: 'pingpong-100', description: 'ping-pong, 1 KiB lines, 100 connections', parallel: 100, size: 1024, durationMs: timing.pingPongMs },
    {
      name: 'bulk',
      description: `bulk upload, ${(timing.bulkBytes / 1024 ** 2).toFixed(0)} MiB on 1 connection, main and mirrors are sinks`,
      parallel: 1,
      size: 1024,
      durationMs: timing.bulkLimitMs,
      bulkBytes: timing.bulkBytes
    }
  ]
}
