/**
 * `--protocol postgres`: what tcptee does to PostgreSQL mirror connections. Owns the module table entry only; the
 * codec is messages.ts, the login stage login-stage.ts, the password crypto auth.ts.
 */
import type { ProtocolModule } from '../registry.js'
import { PostgresLoginStage } from './login-stage.js'

export const postgresModule: ProtocolModule = {
  mirrorStage (mirror) {
    return () => new PostgresLoginStage(mirror)
  },
}
