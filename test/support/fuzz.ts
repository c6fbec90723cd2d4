/**
 * Seeded randomness for the fuzz tests: the same cases on every run, and a failure replays with the seed it prints.
 * `FUZZ_SEED=<n>` overrides a file's default seed.
 */

/** The seed of a fuzz file: `FUZZ_SEED` from the environment, else `fallback`. */
export function fuzzSeed (fallback: number): number {
  return Number(process.env['FUZZ_SEED'] ?? fallback)
}

/** mulberry32: a small, seedable PRNG returning numbers in [0, 1). */
export function prng (seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let x = a
    x = Math.imul(x ^ (x >>> 15), x | 1)
    x ^= x + Math.imul(x ^ (x >>> 7), x | 61)
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}

/** Draws from `random`: an integer in [0, n), an element of `items`, `n` random bytes. */
export function draws (random: () => number) {
  const int = (n: number): number => Math.floor(random() * n)
  return {
    int,
    pick: <T>(items: readonly T[]): T => items[int(items.length)] as T,
    bytes: (n: number): Buffer => Buffer.from(Array.from({ length: n }, () => int(256))),
  }
}
