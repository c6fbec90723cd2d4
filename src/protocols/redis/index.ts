import type { ProtocolModule } from '../registry.js'
import { RedisAuthStage } from './auth-stage.js'

/**
 * `--protocol redis`: with `--mirror-credentials`, each mirror connection gets a {@link RedisAuthStage} that logs in
 * with the mirror's own password. Without the file mirrors get the client's bytes as they are (no stage, no cost).
 */
export const redisModule: ProtocolModule = {
  mirrorStage (mirror) {
    if (mirror.config.mirrorCredentials === undefined) return undefined
    return () => new RedisAuthStage(mirror.name, (user) => mirror.credentials()?.password(mirror.name, user))
  },
}
