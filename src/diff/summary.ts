import { DIFF_OUTCOMES, type CommandCounts, type DiffCounters, type DiffOutcome, type DiffRole } from './outcome.js'

/** Commands listed per mirror in `GET /mirrors` and labelled in `/metrics`; the rest are summed as `other`. */
export const TOP_COMMANDS = 20

/** One request key's line in a {@link DiffSummary}. */
export interface CommandSummary extends CommandCounts {
  command: string
  /** noise / (replies - ignored): how often this request's replies differ between main and the baseline (or the mirror's do where they do). */
  noiseRate: number
}

/** A mirror's comparison counters as `GET /mirrors` (and the status page) show them. */
export interface DiffSummary {
  role: DiffRole
  /** Mirror connections per outcome. */
  connections: Record<DiffOutcome, number>
  replies: { compared: number, diverged: number, ignored: number, noise: number }
  bytesCompared: number
  bytesHeld: number
  /** The request keys with the most divergences and noise (then the most replies), at most {@link TOP_COMMANDS}. */
  commands: CommandSummary[]
  /** The other keys, summed (absent when there are none). */
  otherCommands?: CommandCounts
}

/** Orders request keys: most divergences + noise first, then most replies, then by name (stable across scrapes). */
export function rankCommands (commands: Record<string, CommandCounts>): Array<[string, CommandCounts]> {
  return Object.entries(commands).sort(([ka, a], [kb, b]) =>
    (b.diverged + b.noise) - (a.diverged + a.noise) || b.replies - a.replies || (ka < kb ? -1 : ka > kb ? 1 : 0))
}

function rate (c: CommandCounts): number {
  const n = c.replies - c.ignored
  return n > 0 ? Math.round((c.noise / n) * 10000) / 10000 : 0
}

function add (into: CommandCounts, c: CommandCounts): void {
  into.replies += c.replies
  into.diverged += c.diverged
  into.ignored += c.ignored
  into.noise += c.noise
}

/** The summary of one mirror's counters. */
export function diffSummary (c: DiffCounters, top: number = TOP_COMMANDS): DiffSummary {
  const ranked = rankCommands(c.commands)
  const s: DiffSummary = {
    role: c.role,
    connections: { ...c.outcomes },
    replies: { compared: c.repliesCompared, diverged: c.repliesDiverged, ignored: c.repliesIgnored, noise: c.repliesNoise },
    bytesCompared: c.bytesCompared,
    bytesHeld: c.bytesHeld,
    commands: ranked.slice(0, top).map(([command, v]) => ({ command, ...v, noiseRate: rate(v) })),
  }
  if (ranked.length > top) {
    const other: CommandCounts = { replies: 0, diverged: 0, ignored: 0, noise: 0 }
    for (const [, v] of ranked.slice(top)) add(other, v)
    s.otherCommands = other
  }
  return s
}

/** Two workers' summaries of one mirror as one (`--workers`): counts summed, commands merged by key and ranked again. */
export function mergeDiffSummaries (a: DiffSummary | undefined, b: DiffSummary): DiffSummary {
  if (a === undefined) return structuredClone(b)
  const commands: Record<string, CommandCounts> = {}
  for (const line of [...a.commands, ...b.commands]) {
    const { command, noiseRate: _rate, ...counts } = line
    const e = commands[command]
    if (e === undefined) commands[command] = { ...counts }
    else add(e, counts)
  }
  const connections = { ...a.connections }
  for (const o of DIFF_OUTCOMES) connections[o] += b.connections[o]
  const merged = diffSummary({
    role: a.role,
    outcomes: connections,
    repliesCompared: a.replies.compared + b.replies.compared,
    repliesDiverged: a.replies.diverged + b.replies.diverged,
    repliesIgnored: a.replies.ignored + b.replies.ignored,
    repliesNoise: a.replies.noise + b.replies.noise,
    commands,
    bytesCompared: a.bytesCompared + b.bytesCompared,
    bytesHeld: a.bytesHeld + b.bytesHeld,
  })
  for (const o of [a.otherCommands, b.otherCommands]) {
    if (o === undefined) continue
    merged.otherCommands ??= { replies: 0, diverged: 0, ignored: 0, noise: 0 }
    add(merged.otherCommands, o)
  }
  return merged
}
