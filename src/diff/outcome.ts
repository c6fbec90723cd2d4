/**
 * The vocabulary of reply comparison: comparer kinds, per-mirror-connection outcomes, divergence records, counters,
 * and the excerpt helper that renders up to 64 bytes of a reply as printable text and hex.
 */

/** The comparers tcptee ships. The data path only knows the {@link Comparer} interface, not these names. */
export const DIFF_KINDS = ['bytes', 'redis', 'http', 'postgres', 'mysql'] as const
export type DiffKind = (typeof DIFF_KINDS)[number]

/** What comparing one mirror connection's replies with main's came to. */
export type DiffOutcome =
  | 'match' // both reply streams ended and are equal (under the comparer's rules)
  | 'diverged' // at least one difference was seen; the first one is reported
  | 'mirror-short' // no difference, but the mirror's stream ended and main's went on: the mirror's is a strict prefix
  | 'mirror-long' // no difference, but main's stream ended and the mirror's went on
  | 'incomplete' // the comparison was abandoned (mirror cut off, window exceeded, a stream unparseable or not ended)
  | 'not-compared' // the mirror connection never got going (skipped, refused, connect timeout)

export const DIFF_OUTCOMES: readonly DiffOutcome[] = Object.freeze(['match', 'diverged', 'mirror-short', 'mirror-long', 'incomplete', 'not-compared'])

/** What a mirror is to the comparison: a `candidate` is judged; the `baseline` (`--diff-baseline`) measures noise. */
export type DiffRole = 'candidate' | 'baseline'

/** The replies to one kind of request (a {@link RequestName} key) on one mirror. */
export interface CommandCounts {
  /** Replies paired with main's (compared, ignored or not). */
  replies: number
  /** Differed from main's, and the baseline did not differ there. */
  diverged: number
  /** Compared for framing only (`--diff-ignore`). */
  ignored: number
  /** Differed from main's where main and the baseline differ too (for the baseline itself: every difference). */
  noise: number
}

/** Distinct request keys counted per mirror; further keys are counted under {@link OTHER_COMMAND}. */
export const MAX_COMMAND_KEYS = 500
export const OTHER_COMMAND = 'other'

/** Per-mirror counters of the comparison; part of {@link MirrorCounters}. All zero without `--diff`. */
export interface DiffCounters {
  /** What this mirror is to the comparison. */
  role: DiffRole
  /** Mirror connections per outcome. */
  outcomes: Record<DiffOutcome, number>
  /** Replies (redis) or responses (http) paired with main's, compared or ignored. */
  repliesCompared: number
  /** Of those, how many differed (and were not noise). */
  repliesDiverged: number
  /** Of those, how many were compared for framing only (`--diff-ignore`). */
  repliesIgnored: number
  /** Of those, how many differed where main and the baseline differ too (`--diff-baseline`). */
  repliesNoise: number
  /** Per request key (`GET`, `CLIENT ID`, `GET /users`): at most {@link MAX_COMMAND_KEYS} keys, then `other`. */
  commands: Record<string, CommandCounts>
  /** Bytes compared (bytes comparer). */
  bytesCompared: number
  /** Gauge: bytes of not-yet-matched replies held by all comparers of this mirror now. */
  bytesHeld: number
}

export function emptyDiffCounters (): DiffCounters {
  return {
    role: 'candidate',
    outcomes: { match: 0, diverged: 0, 'mirror-short': 0, 'mirror-long': 0, incomplete: 0, 'not-compared': 0 },
    repliesCompared: 0,
    repliesDiverged: 0,
    repliesIgnored: 0,
    repliesNoise: 0,
    commands: {},
    bytesCompared: 0,
    bytesHeld: 0,
  }
}

export function copyDiffCounters (c: DiffCounters): DiffCounters {
  const commands: Record<string, CommandCounts> = {}
  for (const [k, v] of Object.entries(c.commands)) commands[k] = { ...v }
  return { ...c, outcomes: { ...c.outcomes }, commands }
}

/** The counts of request key `key` on one mirror, created on first use (past {@link MAX_COMMAND_KEYS}: `other`). */
export function commandCounts (c: DiffCounters, key: string): CommandCounts {
  let e = c.commands[key]
  if (e !== undefined) return e
  if (Object.keys(c.commands).length >= MAX_COMMAND_KEYS) {
    e = c.commands[OTHER_COMMAND]
    if (e !== undefined) return e
    key = OTHER_COMMAND
  }
  e = { replies: 0, diverged: 0, ignored: 0, noise: 0 }
  c.commands[key] = e
  return e
}

/** Up to {@link EXCERPT_BYTES} bytes of one side, as escaped text and as hex. */
export interface Excerpt {
  /** Offset of the excerpt's first byte: in the stream (bytes) or in the reply (redis, http body). */
  at: number
  /** Length of the whole reply (or body) it was taken from; for bytes, the bytes this side had at hand. */
  length: number
  text: string
  hex: string
}

/** One difference between main's and a mirror's replies. Written as a JSON line to `--diff-log`. */
export interface Divergence {
  outcome: 'diverged' | 'mirror-short' | 'mirror-long'
  comparer: DiffKind
  /** bytes: stream offset of the first differing byte (or where the shorter stream ended). */
  offset?: number
  /** redis/http: 0-based index of the reply on this connection. */
  index?: number
  /** redis/http: the request this reply answers (`GET k7`, `GET /users/2 HTTP/1.1`), truncated; see RequestName. */
  request?: string
  /** redis/http: the request's key, what counters group by (`GET`, `CLIENT ID`, `GET /users/2`). */
  command?: string
  /** What differs, in a few words. */
  what: string
  /** Main's side of the difference (null when main's stream had ended there). */
  fromMain: Excerpt | null
  /** The mirror's side (null when the mirror's stream had ended there). */
  fromMirror: Excerpt | null
}

/** The final word on one mirror connection: it goes into the connection's close log line. */
export interface DiffResult {
  outcome: DiffOutcome
  /** Why it is `incomplete` or `not-compared`. */
  reason?: string
  /** Replies compared (redis, http) or bytes compared (bytes). */
  compared: number
  /** Replies that differed (redis, http); 0 or 1 for bytes. */
  diverged: number
  /** Replies compared for framing only (`--diff-ignore`); present when not 0. */
  ignored?: number
  /** Replies that differed where main and the baseline differ too (`--diff-baseline`); present when not 0. */
  noise?: number
  /** `baseline` for the `--diff-baseline` target; absent for candidates. */
  role?: 'baseline'
  /** The first difference (or where the shorter stream ended). */
  first?: Divergence
}

export const EXCERPT_BYTES = 64

/** Collects up to `max` bytes starting at byte `start` of the concatenation of `pieces`, copying only those bytes. */
export function slicePieces (pieces: readonly Buffer[], start: number, max: number): Buffer {
  const out: Buffer[] = []
  let skip = start
  let want = max
  for (const p of pieces) {
    if (want <= 0) break
    if (skip >= p.length) {
      skip -= p.length
      continue
    }
    const take = Math.min(p.length - skip, want)
    out.push(p.subarray(skip, skip + take))
    want -= take
    skip = 0
  }
  return Buffer.concat(out)
}

/** Renders bytes for a human: printable ASCII as is, `\r \n \t \\` escaped, anything else as `\xNN`. */
export function printable (b: Buffer): string {
  let s = ''
  for (let i = 0; i < b.length; i++) {
    const c = b[i]!
    if (c === 0x5c) s += '\\\\'
    else if (c >= 0x20 && c < 0x7f) s += String.fromCharCode(c)
    else if (c === 0x0d) s += '\\r'
    else if (c === 0x0a) s += '\\n'
    else if (c === 0x09) s += '\\t'
    else s += '\\x' + c.toString(16).padStart(2, '0')
  }
  return s
}

/** An excerpt of up to 64 bytes of `pieces` from `at`. */
export function excerpt (pieces: readonly Buffer[], at: number, length: number): Excerpt {
  const b = slicePieces(pieces, at, EXCERPT_BYTES)
  return { at, length, text: printable(b), hex: b.toString('hex') }
}

/**
 * Where to start an excerpt so that the first difference at `diffAt` is visible with a little context before it:
 * the reply's start when the difference is within its first 48 bytes, else 16 bytes before the difference.
 */
export function excerptStart (diffAt: number): number {
  return diffAt < EXCERPT_BYTES - 16 ? 0 : diffAt - 16
}

/**
 * Compares two byte sequences given as lists of pieces, without concatenating them.
 * Returns -1 when equal, else the offset of the first differing byte (or the shorter length).
 */
export function firstDifference (a: readonly Buffer[], b: readonly Buffer[]): number {
  let ai = 0
  let ao = 0
  let bi = 0
  let bo = 0
  let offset = 0
  for (;;) {
    while (ai < a.length && ao === a[ai]!.length) { ai++; ao = 0 }
    while (bi < b.length && bo === b[bi]!.length) { bi++; bo = 0 }
    const pa = a[ai]
    const pb = b[bi]
    if (pa === undefined || pb === undefined) return pa === undefined && pb === undefined ? -1 : offset
    const n = Math.min(pa.length - ao, pb.length - bo)
    if (pa.compare(pb, bo, bo + n, ao, ao + n) !== 0) {
      for (let i = 0; i < n; i++) if (pa[ao + i] !== pb[bo + i]) return offset + i
    }
    ao += n
    bo += n
    offset += n
  }
}

/** Thrown by a parser when a stream does not follow its protocol: the comparison is abandoned, never guessed. */
export class DiffProtocolError extends Error {
  override name = 'DiffProtocolError'
}

/** The validated `--diff*` settings (part of Config). */
export interface DiffConfig {
  readonly kind: DiffKind
  /** Bytes of not-yet-matched replies each mirror connection's comparer may hold. */
  readonly window: number
  /** http: lower-cased header names not compared. */
  readonly ignoreHeaders: readonly string[]
  /** Request patterns whose replies are compared for framing only: the protocol's default, extended or replaced by `--diff-ignore`. */
  readonly ignore: readonly string[]
  /** `--diff-baseline`: a second copy of main; where main and it differ, a candidate's difference is noise. */
  readonly baseline: { readonly host: string, readonly port: number } | undefined
  /** File that gets one JSON line per divergence. */
  readonly log: string | undefined
}
