/**
 * What a reply answers: the request's name, and the ignore list (`--diff-ignore`) that matches it. Protocol-neutral:
 * each protocol says how it names a request (redis: the command and its first arguments; http: the request line;
 * a SQL comparer: the statement) and what its default ignore list is.
 */

/** The request a reply answers, as a divergence record and the counters show it. */
export interface RequestName {
  /**
   * What is shown: `GET k7`, `GET /users/2 HTTP/1.1`, `SELECT * FROM t WHERE id = 4`. Printable (non-ASCII bytes
   * escaped), truncated to {@link REQUEST_TEXT_MAX} characters.
   */
  readonly text: string
  /**
   * What is counted and matched against the ignore list: a few words that group alike requests, upper-cased where
   * the protocol is case-insensitive. Redis: the command, and its subcommand for container commands (`GET`,
   * `CLIENT ID`, `COMMAND DOCS`); http: the method and path (`GET /users/2`); SQL: the statement with its literals
   * replaced. At most {@link REQUEST_KEY_MAX} characters.
   */
  readonly key: string
}

export const REQUEST_TEXT_MAX = 120
export const REQUEST_KEY_MAX = 64

/**
 * One ignore list, already resolved against its protocol's default. An entry is a pattern of one or more
 * space-separated words, matched against the same number of leading words of a request's key: `INFO` matches `INFO`
 * (whatever its arguments), `CLIENT ID` matches `CLIENT ID` but not `CLIENT LIST`; `*` matches any run of characters
 * within a word (`COMMAND*` matches `COMMAND` and `COMMAND DOCS`, `GET /health*`). A pattern with more words than the
 * key is matched against the leading words of the request's text instead: `GET cache:*` matches `GET cache:1`.
 * Matching is case-insensitive.
 */
export class IgnoreList {
  private readonly patterns: ReadonlyArray<readonly RegExp[]>
  /** Per key: whether the key alone matches, and whether some longer pattern needs the text. */
  private readonly cache = new Map<string, { hit: boolean, longer: ReadonlyArray<readonly RegExp[]> }>()

  constructor (readonly entries: readonly string[]) {
    this.patterns = entries.map((e) => e.trim().split(/\s+/).map(wordPattern))
  }

  get size (): number {
    return this.entries.length
  }

  matches (name: RequestName | string): boolean {
    if (this.patterns.length === 0) return false
    const key = typeof name === 'string' ? name : name.key
    let c = this.cache.get(key)
    if (c === undefined) {
      const words = key.split(' ')
      const hit = this.patterns.some((p) => p.length <= words.length && p.every((re, i) => re.test(words[i]!)))
      // Longer patterns whose first words match the key's: only they can still match, against the text.
      const longer = hit ? [] : this.patterns.filter((p) => p.length > words.length && words.every((w, i) => p[i]!.test(w)))
      c = { hit, longer }
      if (this.cache.size < 4096) this.cache.set(key, c)
    }
    if (c.hit) return true
    if (c.longer.length === 0 || typeof name === 'string') return false
    const words = name.text.split(' ')
    return c.longer.some((p) => p.length <= words.length && p.every((re, i) => re.test(words[i]!)))
  }
}

function wordPattern (word: string): RegExp {
  const body = word.split('*').map((s) => s.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('.*')
  return new RegExp(`^${body}$`, 'i')
}

/**
 * Resolves a user's `--diff-ignore` against a protocol's default list. `undefined` keeps the default; a list whose
 * first entry starts with `+` extends the default (`+GET cache:*`); any other list replaces it; `none` (or an empty
 * value) means nothing is ignored.
 */
export function resolveIgnoreList (defaults: readonly string[], given: readonly string[] | undefined): string[] {
  if (given === undefined) return [...defaults]
  const items = given.map((s) => s.trim()).filter((s) => s !== '')
  if (items.length === 0 || (items.length === 1 && items[0]!.toLowerCase() === 'none')) return []
  if (items[0]!.startsWith('+')) {
    const extra = items.map((s, i) => (i === 0 ? s.slice(1).trim() : s.replace(/^\+/, '').trim())).filter((s) => s !== '')
    return [...defaults, ...extra.filter((e) => !defaults.includes(e))]
  }
  return items
}
