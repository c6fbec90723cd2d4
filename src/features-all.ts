// Every optional feature of the duplicator (src/features.ts), imported statically: what the library entry gives its
// users, so that createDuplicator works for any config without loadFeatures(). The tcptee command does not import it.
import './protocols/all.js'
import { registerFeatures } from './features.js'
import { DiffSession } from './diff/session.js'
import { Recorder } from './record/recorder.js'

registerFeatures({ DiffSession, Recorder })
