/**
 * "did you mean --mirror?": the closest known spelling to a misspelt flag, environment variable or config key, by
 * edit distance (Levenshtein: insertions, deletions, substitutions), when one is close enough to be a typo.
 */

/** The number of single-character insertions, deletions and substitutions that turn `a` into `b`. */
export function editDistance (a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j)
  for (let i = 1; i <= a.length; i++) {
    const row = [i]
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1))
    }
    prev = row
  }
  return prev[b.length]!
}

/**
 * The candidate closest to `name` (case-insensitive), if it is within a typo's reach: one edit for names up to 4
 * characters, two up to 8, three beyond (`forwrad` is two edits from `forward`). The first candidate wins a tie. Undefined for a name that is far from all.
 */
export function closest (name: string, candidates: Iterable<string>): string | undefined {
  const lower = name.toLowerCase()
  const reach = lower.length <= 4 ? 1 : lower.length <= 8 ? 2 : 3
  let best: string | undefined
  let bestDistance = reach + 1
  for (const c of candidates) {
    const d = editDistance(lower, c.toLowerCase())
    if (d < bestDistance) {
      best = c
      bestDistance = d
    }
  }
  return best
}
