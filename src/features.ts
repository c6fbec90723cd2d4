/**
 * The parts of the duplicator that a config may leave unused, loaded only when it names them: `--protocol` (the
 * protocol's module), `--diff` (the comparers) and `--record` (the recorder and the pcapng writer). A plain TCP
 * duplicator then does not carry their code: about 4 MB less resident memory for the tcptee command.
 *
 * The tcptee command calls {@link loadFeatures} with its config before it creates a duplicator (every option here is
 * restart-only, so a reload never needs one that is not loaded). The library entry (src/index.ts) imports
 * src/features-all.ts, which loads all of them statically: `createDuplicator` works for any config without this call.
 * Using a feature that is not loaded is a programming error, reported by name.
 */
import type { DiffSession } from './diff/session.js'
import type { Recorder } from './record/recorder.js'
import { loadProtocol } from './protocols/registry.js'
import type { ProtocolName } from './config.js'

interface Loaded {
  DiffSession?: typeof DiffSession
  Recorder?: typeof Recorder
}

const loaded: Loaded = {}

/** What {@link loadFeatures} looks at: a normalized config, or the options it came from. */
export interface FeatureNeeds {
  readonly protocol?: ProtocolName | string | undefined
  readonly diff?: unknown
  readonly record?: unknown
}

/** Loads what `needs` names and is not loaded yet. */
export async function loadFeatures (needs: FeatureNeeds): Promise<void> {
  const jobs: Array<Promise<void>> = []
  if (needs.protocol !== undefined && needs.protocol !== 'tcp') jobs.push(loadProtocol(needs.protocol as ProtocolName))
  if (needs.diff !== undefined && loaded.DiffSession === undefined) {
    jobs.push(import('./diff/session.js').then((m) => { loaded.DiffSession = m.DiffSession }))
  }
  if (needs.record !== undefined && loaded.Recorder === undefined) {
    jobs.push(import('./record/recorder.js').then((m) => { loaded.Recorder = m.Recorder }))
  }
  await Promise.all(jobs)
}

/** Registers classes imported statically (src/features-all.ts). */
export function registerFeatures (classes: Loaded): void {
  Object.assign(loaded, classes)
}

function notLoaded (what: string): never {
  throw new Error(`${what}: not loaded (await loadFeatures(config) before creating the duplicator)`)
}

/** The comparer of a connection (`--diff`). */
export function diffSessionClass (): typeof DiffSession {
  return loaded.DiffSession ?? notLoaded('--diff')
}

/** The recorder (`--record`). */
export function recorderClass (): typeof Recorder {
  return loaded.Recorder ?? notLoaded('--record')
}
