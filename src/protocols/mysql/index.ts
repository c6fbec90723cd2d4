import type { ProtocolModule } from '../registry.js'
import { MysqlLoginStage } from './login-stage.js'
import { openMysqlSession } from './session-opener.js'

/**
 * `--protocol mysql`: each mirror connection logs in with the mirror's own password ({@link MysqlLoginStage}); TLS on
 * every hop is negotiated inside the protocol (CLIENT_SSL, SSLRequest): with the client and main by the session
 * opener ({@link openMysqlSession}), with each mirror by its login stage.
 */
export const mysqlModule: ProtocolModule = {
  mirrorStage (mirror) {
    const limit = mirror.config.mirrorBuffer
    return () => new MysqlLoginStage(mirror, limit)
  },
  openSession: openMysqlSession,
}
