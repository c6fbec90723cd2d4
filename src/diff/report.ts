import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'
import { ConfigError } from '../ops/errors.js'
import type { Divergence } from './outcome.js'

/**
 * `tcptee diff-report`: summarises a `--diff-log` file. Records are read line by line and only aggregates are kept
 * (one example record per command and per mirror), so a large log takes little memory.
 */

/** A divergence record as written by the diff log. */
export type DivergenceRecord = Divergence & { time: string, conn: number, client: string, mirror: string, suppressed?: number }

/** One group of records: one command (request key), or one mirror. */
export interface ReportGroup {
  /** Records in the group. */
  records: number
  /** Records per outcome (`diverged`, `mirror-short`, `mirror-long`). */
  outcomes: Record<string, number>
  firstSeen: string
  lastSeen: string
  /** The first record of the group, whole. */
  example: DivergenceRecord
}

export interface DiffReport {
  file: string
  /** Divergence records read. */
  records: number
  /** Records the rate limit dropped (the `suppressed` counts in the file). */
  suppressed: number
  /** Lines that are not divergence records (not JSON, or not from a diff log). */
  skipped: number
  firstSeen: string | null
  lastSeen: string | null
  /** Per command (request key), most records first; each with the mirrors it diverged on. */
  commands: Array<ReportGroup & { command: string, mirrors: string[] }>
  /** Per mirror, most records first; each with how many distinct commands diverged on it. */
  mirrors: Array<ReportGroup & { mirror: string, commands: number }>
}

/** The key a record is grouped under: its request key, else its request, else the comparer's stand-in. */
export function recordCommand (r: Partial<DivergenceRecord>): string {
  if (typeof r.command === 'string' && r.command !== '') return r.command
  if (typeof r.request === 'string' && r.request !== '') return r.request
  return r.comparer === 'bytes' ? '(byte stream)' : '(request not known)'
}

class Groups<G extends ReportGroup> {
  readonly map = new Map<string, G & { extra: Set<string> }>()

  add (key: string, r: DivergenceRecord, extra: string, make: () => G): void {
    let g = this.map.get(key)
    if (g === undefined) {
      g = Object.assign(make(), { extra: new Set<string>() })
      this.map.set(key, g)
    }
    g.records++
    g.outcomes[r.outcome] = (g.outcomes[r.outcome] ?? 0) + 1
    if (r.time < g.firstSeen) g.firstSeen = r.time
    if (r.time > g.lastSeen) g.lastSeen = r.time
    if (g.extra.size < 1000) g.extra.add(extra)
  }

  sorted (): Array<[string, G & { extra: Set<string> }]> {
    return [...this.map.entries()].sort(([ka, a], [kb, b]) => b.records - a.records || (ka < kb ? -1 : ka > kb ? 1 : 0))
  }
}

function isRecord (v: unknown): v is DivergenceRecord {
  if (v === null || typeof v !== 'object') return false
  const r = v as Record<string, unknown>
  return typeof r['time'] === 'string' && typeof r['mirror'] === 'string' && typeof r['outcome'] === 'string' && typeof r['what'] === 'string'
}

/** Reads a diff log and summarises it. Throws ConfigError (naming the file) when it cannot be read. */
export async function readDiffReport (file: string): Promise<DiffReport> {
  const stream = createReadStream(file, { encoding: 'utf8' })
  const opened = new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve())
    stream.once('error', (err: NodeJS.ErrnoException) => reject(new ConfigError(`diff-report: cannot read ${file}: ${err.code ?? err.message}`, 'FILE', { cause: err })))
  })
  await opened
  const lines = createInterface({ input: stream, crlfDelay: Infinity })
  const report = summarize(file)
  for await (const line of lines) report.line(line)
  return report.done()
}

/** Summarises lines of a diff log given in memory (what readDiffReport does per line). */
export function summarizeDiffLog (file: string, lines: Iterable<string>): DiffReport {
  const report = summarize(file)
  for (const line of lines) report.line(line)
  return report.done()
}

function summarize (file: string): { line (text: string): void, done (): DiffReport } {
  const commands = new Groups<ReportGroup>()
  const mirrors = new Groups<ReportGroup>()
  let records = 0
  let suppressed = 0
  let skipped = 0
  let firstSeen: string | null = null
  let lastSeen: string | null = null
  const group = (r: DivergenceRecord) => (): ReportGroup => ({ records: 0, outcomes: {}, firstSeen: r.time, lastSeen: r.time, example: r })
  return {
    line (text: string): void {
      if (text.trim() === '') return
      let v: unknown
      try {
        v = JSON.parse(text)
      } catch {
        skipped++
        return
      }
      const s = (v as { suppressed?: unknown } | null)?.suppressed
      if (typeof s === 'number' && Number.isFinite(s)) suppressed += s
      if (!isRecord(v)) {
        if (typeof s !== 'number') skipped++
        return
      }
      records++
      if (firstSeen === null || v.time < firstSeen) firstSeen = v.time
      if (lastSeen === null || v.time > lastSeen) lastSeen = v.time
      const command = recordCommand(v)
      commands.add(command, v, v.mirror, group(v))
      mirrors.add(v.mirror, v, command, group(v))
    },
    done (): DiffReport {
      return {
        file,
        records,
        suppressed,
        skipped,
        firstSeen,
        lastSeen,
        commands: commands.sorted().map(([command, { extra, ...g }]) => ({ command, ...g, mirrors: [...extra].sort() })),
        mirrors: mirrors.sorted().map(([mirror, { extra, ...g }]) => ({ mirror, ...g, commands: extra.size })),
      }
    },
  }
}

function table (head: string[], rows: string[][]): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)))
  const fmt = (r: string[]): string => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join('  ').trimEnd()
  return [fmt(head), ...rows.map(fmt)]
}

function outcomes (o: Record<string, number>): string {
  return Object.entries(o).map(([k, n]) => (k === 'diverged' ? `${n}` : `${n} ${k}`)).join(', ')
}

function clip (s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 1) + '…' : s
}

/** The report as text: a summary line, a table per command and per mirror, then one example record per command. */
export function formatDiffReport (r: DiffReport): string {
  const out: string[] = []
  const span = r.firstSeen === null ? '' : `, ${r.firstSeen} to ${r.lastSeen}`
  out.push(`${r.file}: ${r.records} divergence record${r.records === 1 ? '' : 's'} on ${r.mirrors.length} mirror${r.mirrors.length === 1 ? '' : 's'}${span}`)
  if (r.suppressed > 0) out.push(`${r.suppressed} more were dropped by the log's rate limit (not counted below)`)
  if (r.skipped > 0) out.push(`${r.skipped} line${r.skipped === 1 ? ' is' : 's are'} not divergence records (skipped)`)
  if (r.records === 0) return out.join('\n') + '\n'
  out.push('', 'by command')
  out.push(...table(['command', 'records', 'mirrors', 'first seen', 'last seen', 'example'],
    r.commands.map((c) => [clip(c.command, 40), outcomes(c.outcomes), String(c.mirrors.length), c.firstSeen, c.lastSeen, clip(c.example.request ?? c.example.what, 60)])))
  out.push('', 'by mirror')
  out.push(...table(['mirror', 'records', 'commands', 'first seen', 'last seen', 'example'],
    r.mirrors.map((m) => [m.mirror, outcomes(m.outcomes), String(m.commands), m.firstSeen, m.lastSeen, clip(m.example.request ?? m.example.what, 60)])))
  out.push('', 'examples (the first record of each command)')
  for (const c of r.commands) {
    const e = c.example
    out.push(`- ${c.command}: ${e.what}`)
    out.push(`    at ${e.time}, mirror ${e.mirror}, conn ${e.conn}, client ${e.client}${e.request === undefined ? '' : `, request ${e.request}`}`)
    out.push(`    main:   ${e.fromMain === null ? '(nothing: its replies had ended)' : `${e.fromMain.text}  [hex ${clip(e.fromMain.hex, 64)}]`}`)
    out.push(`    mirror: ${e.fromMirror === null ? '(nothing: its replies had ended)' : `${e.fromMirror.text}  [hex ${clip(e.fromMirror.hex, 64)}]`}`)
  }
  return out.join('\n') + '\n'
}
