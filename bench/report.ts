// Aggregation of rounds into per-setup results, and the markdown tables.
import type { LoadSummary } from '../testkit/load-client.js'

/** ok: no errors. errors: wrong or missing bytes. stalled: echoes stopped or the client had to be killed. failed: no summary. */
export type RunStatus = 'ok' | 'errors' | 'stalled' | 'failed'

/** One client run against one setup. */
export interface RunRecord {
  scenario: string
  setup: string
  round: number
  status: RunStatus
  /** Why the run failed or stalled, when known. */
  note: string | null
  /** The client's --json summary, or null if it produced none. */
  client: LoadSummary | null
  /** Wall time from the first CPU reading to the second, s. */
  wallSec: number
  /** Proxy process tree (tcptee, naive or peer); null for direct. */
  proxy: {
    pids: number[]
    /** From before the client started to after it exited. */
    cpuSec: number
    /** Over the client's measured window only (null when the client did not mark it). */
    windowCpuSec?: number | null
    /** Length of that window as seen by the benchmark, s. */
    windowSec?: number | null
    /** read and write system calls (syscr + syscw from /proc/PID/io) in that window. */
    windowIoSyscalls?: number | null
    peakRssKiB: number
    mirrorCutOffs?: number
  } | null
  /** The main test server's CPU during the run. */
  mainServerCpuSec: number
}

export interface SetupResult {
  scenario: string
  setup: string
  rounds: number
  /** Status per round, in order. */
  statuses: RunStatus[]
  /** Ping-pong: median req/s. null for bulk. */
  reqPerSec: number | null
  /** Bulk: median MB/s (10^6 bytes) confirmed by main. null for ping-pong. */
  mbPerSec: number | null
  /** Median throughput over direct's median in the same scenario. */
  ratioToDirect: number | null
  latencyP50Ms: number | null
  latencyP99Ms: number | null
  /** Ping-pong: proxy CPU seconds per 100k requests (median). */
  proxyCpuSecPer100k: number | null
  /** Bulk: proxy CPU seconds per GB (10^9 bytes) confirmed (median). */
  proxyCpuSecPerGB: number | null
  /** Ping-pong: the proxy's read and write system calls per request in the window (median). */
  proxySyscallsPerReq: number | null
  /** Proxy CPU seconds over the client's measured window (1.0 = one core busy), median. */
  proxyCpuUtil: number | null
  clientCpuSecPer100k: number | null
  clientCpuSecPerGB: number | null
  /** Client CPU over its measurement window, median. */
  clientCpuUtil: number | null
  mainServerCpuUtil: number | null
  /** Largest VmHWM over rounds (summed over the proxy's process tree), MiB. */
  proxyPeakRssMiB: number | null
  /** Errors summed over rounds (unanswered requests included). */
  errors: number
  /** tcptee: mirror connections cut off (overflow, write timeout) summed over rounds; the mirror then stopped costing anything. */
  mirrorCutOffs: number
}

function median (values: Array<number | null>): number | null {
  const v = values.filter((x): x is number => x !== null && Number.isFinite(x)).sort((a, b) => a - b)
  if (v.length === 0) return null
  const mid = v.length >> 1
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2
}

const ratio = (a: number, b: number | null): number | null => b === null || b <= 0 ? null : a / b
const round = (x: number | null, digits: number): number | null => x === null ? null : Number(x.toFixed(digits))

/**
 * Seconds the client kept the path busy: warm-up plus measured window. The
 * proxy and servers idle while the client process starts and exits, so their
 * CPU over this time is their utilisation under load.
 */
function activeSec (r: RunRecord): number | null {
  const c = r.client
  if (c === null) return null
  return (c.elapsedMs + (c.bulk === null ? c.warmupMs : 0)) / 1000
}

function clientCpuSec (c: LoadSummary): number {
  return (c.cpu.userMs + c.cpu.systemMs) / 1000
}

/** Combine the rounds of one (scenario, setup). Throughput of a killed or summary-less run counts as 0. */
export function aggregate (runs: RunRecord[], directThroughput: number | null): SetupResult {
  const first = runs[0]!
  const bulk = first.client?.bulk != null || first.scenario === 'bulk'
  const throughput = runs.map((r) => r.client === null ? 0 : bulk ? (r.client.bulk?.mbPerSec ?? 0) : r.client.reqPerSec)
  const med = median(throughput)
  const per = (r: RunRecord, cpu: number | null): number | null => {
    const c = r.client
    if (c === null || cpu === null) return null
    if (bulk) {
      const gb = (c.bulk?.bytesConfirmed ?? 0) / 1e9
      return gb > 0 ? cpu / gb : null
    }
    return c.requests > 0 ? cpu / c.requests * 1e5 : null
  }
  // Proxy CPU per request: the window's CPU over the window's requests. (Older records without window marks: the
  // whole run's CPU over all its requests, which overstates it by the warm-up's share.)
  const proxyPer = runs.map((r) => {
    const w = r.proxy?.windowCpuSec
    const c = r.client
    if (w === undefined || w === null || c === null) return per(r, r.proxy?.cpuSec ?? null)
    if (bulk) return per(r, w)
    const n = c.windowRequests ?? c.requests
    return n > 0 ? w / n * 1e5 : null
  })
  const proxyUtil = (r: RunRecord): number | null => {
    if (r.proxy === null) return null
    if (r.proxy.windowCpuSec != null && r.proxy.windowSec != null) return ratio(r.proxy.windowCpuSec, r.proxy.windowSec)
    return ratio(r.proxy.cpuSec, activeSec(r))
  }
  const clientPer = runs.map((r) => per(r, r.client === null ? null : clientCpuSec(r.client)))
  const rss = runs.map((r) => r.proxy?.peakRssKiB ?? null).filter((x): x is number => x !== null)
  return {
    scenario: first.scenario,
    setup: first.setup,
    rounds: runs.length,
    statuses: runs.map((r) => r.status),
    reqPerSec: bulk ? null : round(med, 0),
    mbPerSec: bulk ? round(med, 1) : null,
    ratioToDirect: med !== null && directThroughput !== null && directThroughput > 0 ? round(med / directThroughput, 3) : null,
    latencyP50Ms: bulk ? null : round(median(runs.map((r) => r.client?.latencyMs.p50 ?? null)), 3),
    latencyP99Ms: bulk ? null : round(median(runs.map((r) => r.client?.latencyMs.p99 ?? null)), 3),
    proxyCpuSecPer100k: bulk ? null : round(median(proxyPer), 3),
    proxyCpuSecPerGB: bulk ? round(median(proxyPer), 3) : null,
    proxyCpuUtil: round(median(runs.map(proxyUtil)), 2),
    proxySyscallsPerReq: bulk ? null : round(median(runs.map((r) => {
      const n = r.client?.windowRequests ?? 0
      return r.proxy?.windowIoSyscalls != null && n > 0 ? r.proxy.windowIoSyscalls / n : null
    })), 2),
    clientCpuSecPer100k: bulk ? null : round(median(clientPer), 3),
    clientCpuSecPerGB: bulk ? round(median(clientPer), 3) : null,
    clientCpuUtil: round(median(runs.map((r) => r.client === null || r.client.elapsedMs <= 0 ? null : clientCpuSec(r.client) / (r.client.elapsedMs / 1000))), 2),
    mainServerCpuUtil: round(median(runs.map((r) => ratio(r.mainServerCpuSec, activeSec(r)))), 2),
    proxyPeakRssMiB: rss.length === 0 ? null : round(Math.max(...rss) / 1024, 1),
    errors: runs.reduce((n, r) => n + (r.client?.errors ?? 0), 0),
    mirrorCutOffs: runs.reduce((n, r) => n + (r.proxy?.mirrorCutOffs ?? 0), 0)
  }
}

function cell (x: number | null, suffix = ''): string {
  return x === null ? '–' : `${x}${suffix}`
}

function statusCell (statuses: RunStatus[]): string {
  if (statuses.every((s) => s === 'ok')) return 'ok'
  const counts = new Map<RunStatus, number>()
  for (const s of statuses) counts.set(s, (counts.get(s) ?? 0) + 1)
  return [...counts].filter(([s]) => s !== 'ok').map(([s, n]) => `${s} ${n}/${statuses.length}`).join(', ')
}

const pct = (x: number | null): string => x === null ? '–' : `${Math.round(x * 100)}%`

/** One markdown table for one scenario. */
export function table (results: SetupResult[]): string {
  const bulk = results.some((r) => r.mbPerSec !== null)
  const head = bulk
    ? ['setup', 'status', 'MB/s', 'vs direct', 'proxy CPU s/GB', 'client CPU s/GB', 'proxy CPU', 'client CPU', 'proxy peak RSS MiB', 'errors', 'mirror cut-offs']
    : ['setup', 'status', 'req/s', 'vs direct', 'p50 ms', 'p99 ms', 'proxy CPU s/100k req', 'proxy read+write syscalls/req', 'client CPU s/100k req', 'proxy CPU', 'client CPU', 'proxy peak RSS MiB', 'errors', 'mirror cut-offs']
  const rows = results.map((r) => bulk
    ? [r.setup, statusCell(r.statuses), cell(r.mbPerSec), cell(r.ratioToDirect), cell(r.proxyCpuSecPerGB), cell(r.clientCpuSecPerGB),
        pct(r.proxyCpuUtil), pct(r.clientCpuUtil), cell(r.proxyPeakRssMiB), String(r.errors), String(r.mirrorCutOffs)]
    : [r.setup, statusCell(r.statuses), cell(r.reqPerSec), cell(r.ratioToDirect), cell(r.latencyP50Ms), cell(r.latencyP99Ms),
        cell(r.proxyCpuSecPer100k), cell(r.proxySyscallsPerReq), cell(r.clientCpuSecPer100k), pct(r.proxyCpuUtil), pct(r.clientCpuUtil), cell(r.proxyPeakRssMiB), String(r.errors), String(r.mirrorCutOffs)])
  return [head, head.map(() => '---'), ...rows].map((cols) => `| ${cols.join(' | ')} |`).join('\n')
}
