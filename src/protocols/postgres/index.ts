/**
 * `--protocol postgres`: what tcptee does to PostgreSQL sessions. Owns the module table entry and the process's
 * cancel-key table; the codec is messages.ts, the login stage login-stage.ts, the password crypto auth.ts, the
 * key tracking cancel-keys.ts.
 */
import type { ProtocolModule } from '../registry.js'
import { CancelKeys, MainKeyObserver } from './cancel-keys.js'
import { PostgresLoginStage } from './login-stage.js'
import { openPostgresSession } from './session-opener.js'

/** Keys of every live session of this process (sessions of several duplicators cannot clash: main's keys are unique per server, and the table is keyed by main's key and the session object). */
export const cancelKeys = new CancelKeys()

export const postgresModule: ProtocolModule = {
  mirrorStage (mirror) {
    return (session) => new PostgresLoginStage(mirror, {
      mirrorKey: (key) => { cancelKeys.mirrorKey(session, mirror.name, key) },
      cancel: (mainKey) => cancelKeys.cancelFor(mainKey, mirror.name),
    })
  },
  mainObserver: (session) => new MainKeyObserver(cancelKeys, session),
  openSession: openPostgresSession,
}
