import { isDeepStrictEqual } from 'node:util'
import { setTimeout as delay } from 'node:timers/promises'

/**
 * After the client is done, main's state is final but the mirror may still be working through the
 * tail of the stream (tcptee never waits for mirrors). Polls both until they are deep-equal or until
 * `timeoutMs`, and returns the last pair read, so the caller's assertion shows the difference.
 * `ms` includes the time the reads themselves take (DEBUG DIGEST or a checksum query is not free).
 */
export async function settle<T> (
  readMain: () => Promise<T>, readMirror: () => Promise<T>, { timeoutMs = 30_000, intervalMs = 100 } = {}
): Promise<{ main: T, mirror: T, ms: number, polls: number }> {
  const started = Date.now()
  const main = await readMain()
  for (let polls = 1; ; polls++) {
    const mirror = await readMirror()
    const ms = Date.now() - started
    if (isDeepStrictEqual(main, mirror) || ms > timeoutMs) return { main, mirror, ms, polls }
    await delay(intervalMs)
  }
}
