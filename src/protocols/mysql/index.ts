import type { ProtocolModule } from '../registry.js'
import { MysqlLoginStage } from './login-stage.js'

/** `--protocol mysql`: each mirror connection logs in with the mirror's own password ({@link MysqlLoginStage}). */
export const mysqlModule: ProtocolModule = {
  mirrorStage (mirror) {
    const limit = mirror.config.mirrorBuffer
    return () => new MysqlLoginStage(mirror, limit)
  },
}
