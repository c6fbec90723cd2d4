// What the benchmark compares (setups) and the workloads it runs (scenarios).

/** What stands behind one mirror address. In bulk scenarios 'echo' mirrors become sinks. */
export type MirrorKind = 'echo' | 'stall' | 'refused'

export interface Setup {
  name: string
  /** none: the client talks to main directly (the ceiling). haproxy: HAProxy as a one-hop proxy without a mirror. */
  proxy: 'none' | 'tcptee' | 'naive' | 'peer' | 'haproxy'
  mirrors: MirrorKind[]
  /** For proxy 'peer': command template with {listen}, {main}, {mirror}. For 'haproxy': the config template file. */
  template?: string
  /** For proxy 'tcptee': extra flags of this setup (a variant), before --tcptee-args. */
  args?: string[]
  /** For proxy 'tcptee': node flags (before the script), e.g. the V8 settings the deploy files put in NODE_OPTIONS. */
  nodeArgs?: string[]
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
  /**
   * The load generator and servers: `bundled` (tcptee-testclient, which checks every byte, and tcptee-testserver) or
   * `go` (goduplicator's own test client and echo server, from `--peers DIR`): the peers' own ground.
   */
  load?: 'bundled' | 'go'
}

/** What `--peers DIR` found (built by ../shared/peers/build.sh DIR, or by hand from the peers' repositories). */
export interface PeerBinaries {
  goduplicator?: string
  goClient?: string
  goServer?: string
  agnoster?: string
  haproxyTemplate?: string
}

/** The built-in setups, then two per peer (one echoing mirror, one stalled mirror). */
export function setups (peers: Array<[string, string]>, haproxyTemplate?: string): Setup[] {
  const list: Setup[] = [
    { name: 'direct', proxy: 'none', mirrors: [] },
    // One hop in C without a mirror: what a proxy costs at all, the floor for a duplicator.
    ...(haproxyTemplate === undefined ? [] : [{ name: 'haproxy-no-mirror', proxy: 'haproxy' as const, mirrors: [], template: haproxyTemplate }]),
    { name: 'tcptee-no-mirror', proxy: 'tcptee', mirrors: [] },
    { name: 'tcptee-1-mirror', proxy: 'tcptee', mirrors: ['echo'] },
    { name: 'tcptee-2-mirrors', proxy: 'tcptee', mirrors: ['echo', 'echo'] },
    { name: 'tcptee-stalled-mirror', proxy: 'tcptee', mirrors: ['stall'] },
    { name: 'tcptee-refused-mirror', proxy: 'tcptee', mirrors: ['refused'] },
    // Variants of the 1-mirror setup: what batching mirror writes buys, two worker processes, reply comparison on.
    { name: 'tcptee-1-mirror-nobatch', proxy: 'tcptee', mirrors: ['echo'], args: ['--mirror-batch', '0'] },
    // The batching window before 20 ms became the default: at 100 connections each 2 ms window mostly held one chunk.
    { name: 'tcptee-1-mirror-batch2ms', proxy: 'tcptee', mirrors: ['echo'], args: ['--mirror-batch', '2ms'] },
    { name: 'tcptee-1-mirror-2workers', proxy: 'tcptee', mirrors: ['echo'], args: ['--workers', '2'] },
    // As the Dockerfile and the systemd unit run it: NODE_OPTIONS=--max-semi-space-size=2 (a small young generation).
    { name: 'tcptee-1-mirror-semi2', proxy: 'tcptee', mirrors: ['echo'], nodeArgs: ['--max-semi-space-size=2'] },
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

export function scenarios (timing: Timing, goLoad = false): Scenario[] {
  const go: Scenario[] = !goLoad
    ? []
    : [
        { name: 'go-pingpong-10', description: 'goduplicator\'s test client and echo server: ping-pong, 1 KiB, 10 connections', parallel: 10, size: 1024, durationMs: timing.pingPongMs, load: 'go' },
        { name: 'go-pingpong-100', description: 'goduplicator\'s test client and echo server: ping-pong, 1 KiB, 100 connections', parallel: 100, size: 1024, durationMs: timing.pingPongMs, load: 'go' }
      ]
  return [...go,
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
