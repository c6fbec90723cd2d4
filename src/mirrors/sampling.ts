/**
 * Connection sampling (`--percent`). One draw per client connection, in [0, 100); the connection is mirrored to a
 * target when the draw is below the target's percentage. One draw serves every mirror, so the samples nest: the
 * connections a 25% mirror gets are a subset of those a 50% mirror gets. Deciding per connection, never per chunk,
 * means every mirrored connection is complete from its first byte.
 */
export interface Sampler {
  /** A number in [0, 100). */
  draw (): number
}

/**
 * A sampler. With a seed it is a deterministic mulberry32 stream (the same seed gives the same decisions for the
 * same order of accepted connections, for tests and for reproducing a run); without one it uses Math.random.
 */
export function createSampler (seed?: number): Sampler {
  if (seed === undefined) return { draw: () => Math.random() * 100 }
  let a = seed >>> 0
  return {
    draw (): number {
      a = (a + 0x6d2b79f5) >>> 0
      let t = a
      t = Math.imul(t ^ (t >>> 15), t | 1)
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
      return (((t ^ (t >>> 14)) >>> 0) / 4294967296) * 100
    },
  }
}

/** Whether a connection with draw `u` is mirrored to a target sampled at `percent`. */
export function sampled (u: number, percent: number): boolean {
  return u < percent
}
