/**
 * `tcptee status`: the status page's overview as a plain-text table for a terminal. Pure: an overview (and the one
 * before it, for rates) in, lines out.
 */
import type { StatusOverview } from './status-feed.js'

const FATE_COLUMNS: ReadonlyArray<readonly [string, readonly string[]]> = [
  ['OK', ['ok']],
  ['CUT', ['overflow', 'write-timeout']],
  ['REFUSED', ['refused', 'connect-timeout', 'tls-failed']],
  ['SKIPPED', ['skipped']],
  ['RESET', ['reset', 'closed']],
]

function bytes (n: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let i = 0
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++ }
  return i === 0 ? `${Math.round(n)}B` : `${n.toFixed(1)}${units[i]!}`
}

function rate (now: number, before: number | undefined, dtMs: number | undefined): string {
  if (before === undefined || dtMs === undefined || dtMs <= 0) return '-'
  const r = Math.max(0, (now - before) * 1000 / dtMs)
  return r >= 100 ? String(Math.round(r)) : r.toFixed(1)
}

/** Every number in `obj` by dotted path, for counters this file does not know by name (diff counters). */
function leaves (obj: unknown, prefix = '', out: Record<string, number> = {}): Record<string, number> {
  if (obj === null || typeof obj !== 'object') return out
  for (const [k, v] of Object.entries(obj)) {
    const key = prefix === '' ? k : `${prefix}.${k}`
    if (typeof v === 'number') out[key] = v
    else leaves(v, key, out)
  }
  return out
}

function table (rows: string[][]): string[] {
  const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => (r[c] ?? '').length)))
  return rows.map((r) => r.map((cell, c) => c === 0 || c === r.length - 1 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!)).join('  ').trimEnd())
}

/**
 * The overview as text: a line for the process as a whole, a table of main and the mirrors (state, active
 * connections, rates when `previous` is given, fates since start), and the non-zero diff counters per mirror.
 */
export function renderStatusTable (now: StatusOverview, previous?: StatusOverview): string {
  const dt = previous === undefined ? undefined : now.t - previous.t
  const s = now.snap
  const p = previous?.snap
  const out: string[] = []
  out.push(`tcptee status at ${new Date(now.t).toISOString()}: ${s.connections.active} active connections, ${s.connections.total} total; ` +
    `client→main ${bytes(s.bytes.clientToMain)}, main→client ${bytes(s.bytes.mainToClient)}; ` +
    `main connect failures ${s.main.connectFailures}, timeouts ${s.main.connectTimeouts}`)
  out.push('')
  const rows: string[][] = [['TARGET', 'STATE', 'ACTIVE', 'CONN/S', 'BYTES/S', ...FATE_COLUMNS.map(([h]) => h), 'LAST ERROR']]
  rows.push(['main', '-', String(s.connections.active), rate(s.connections.total, p?.connections.total, dt),
    rate(s.bytes.clientToMain, p?.bytes.clientToMain, dt), '-', '-', String(s.main.connectFailures + s.main.connectTimeouts), '-', '-', ''])
  const diffLines: string[] = []
  for (const m of now.mirrors) {
    const c = s.mirrors[m.address]
    const before = p?.mirrors[m.address]
    const fates = c?.fates ?? {} as Record<string, number>
    rows.push([
      m.address, m.state, String(m.activeConnections),
      rate(c?.connects ?? 0, before?.connects, dt),
      rate(c?.bytesSent ?? 0, before?.bytesSent, dt),
      ...FATE_COLUMNS.map(([, names]) => String(names.reduce((sum, f) => sum + ((fates as Record<string, number>)[f] ?? 0), 0))),
      m.lastError === null ? '' : m.lastError.message,
    ])
    const diff = Object.entries(leaves(c?.diff)).filter(([, v]) => v !== 0)
    if (diff.length > 0) diffLines.push(`  ${m.address}: ${diff.map(([k, v]) => `${k.replace(/^outcomes\./, '')} ${v}`).join(', ')}`)
  }
  out.push(...table(rows))
  if (diffLines.length > 0) out.push('', 'reply comparison (--diff):', ...diffLines)
  const recent = s.recentDivergences ?? []
  if (recent.length > 0) {
    out.push('', 'latest divergences:')
    for (const d of recent.slice(-5)) {
      const where = d.request ?? (d.index !== undefined ? `reply ${d.index}` : d.offset !== undefined ? `byte ${d.offset}` : '')
      out.push(`  ${d.at}  ${d.mirror}  conn ${d.conn} ${d.client}  ${d.outcome}  ${where}: ${d.what}`)
    }
  }
  return out.join('\n') + '\n'
}
