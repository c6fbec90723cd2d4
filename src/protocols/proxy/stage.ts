import type { MirrorStage, StageContext, StageSession } from '../../datapath/stage.js'
import type { SessionPeer } from '../../datapath/session-source.js'
import { encodeV1, encodeV2 } from './encode.js'

/** PROXY protocol version to send (`--proxy-protocol-out`, `--mirror-proxy-protocol`, `-m host:port@proxy-v2`). */
export type ProxyVersion = 'v1' | 'v2'

/**
 * The PROXY header that tells a backend who the client is. When the client's address cannot be written in a header
 * (a recorded session without addresses, or families that differ for v1), v1 sends `PROXY UNKNOWN` and v2 `LOCAL`:
 * the backend then uses the connection's own addresses, as the spec says.
 */
export function proxyHeaderFor (version: ProxyVersion, peer: SessionPeer): Buffer {
  try {
    return version === 'v1' ? encodeV1(peer.client, peer.local) : encodeV2(peer.client, peer.local)
  } catch {
    return version === 'v1' ? encodeV1() : encodeV2()
  }
}

/**
 * A mirror's stage that puts a PROXY header in front of its copy of the client stream, before any client byte and
 * before the mirror says anything (servers that wait for a header, like any PROXY receiver, then greet), and then
 * gets out of the way.
 */
export class ProxyHeaderStage implements MirrorStage {
  passthrough = false
  private readonly header: Buffer

  constructor (version: ProxyVersion, session: StageSession) {
    this.header = proxyHeaderFor(version, session)
  }

  start (ctx: StageContext): void {
    ctx.send(this.header)
    this.passthrough = true
  }

  clientData (chunk: Buffer, ctx: StageContext): void {
    ctx.send(chunk)
  }
}
