import type { ProtocolModule } from '../registry.js'
import { RateLimiter } from '../../mirrors/rate-limiter.js'
import { Metrics } from '../../ops/metrics.js'
import { HttpRequestStage, type HttpMirrorRules } from './request-stage.js'

/**
 * `--protocol http`: each mirror connection gets an {@link HttpRequestStage} when that mirror's requests are
 * rewritten (`--mirror-http-host`, `@host=`, `--mirror-http-header`, `http://user:pass@`), filtered
 * (`--mirror-http-method`, `-url`, `-header-filter`, `-header-hash`) or rate-limited (`@rps`). Otherwise it gets no
 * stage and pays nothing.
 */
export const httpModule: ProtocolModule = {
  mirrorStage (mirror) {
    const http = mirror.config.http
    if (http === undefined) return undefined
    const spec = mirror.spec
    const auth = spec.basicAuth
    const rules: HttpMirrorRules = Object.freeze({
      host: spec.httpHost ?? http.host,
      headers: http.headers,
      authorization: auth === undefined ? undefined : `Basic ${Buffer.from(`${auth.user}:${auth.password}`, 'utf8').toString('base64')}`,
      methods: http.methods,
      url: http.url,
      headerFilters: http.headerFilters,
      headerHash: http.headerHash,
      // One bucket per mirror target, shared by all its connections.
      rate: spec.rps === undefined ? undefined : new RateLimiter(spec.rps),
      // Counted in the mirror's own counters; a caller without them (a unit test) gets a private set.
      counters: mirror.counters ?? new Metrics().mirror(mirror.name),
    })
    const idle = rules.host === undefined && rules.headers.length === 0 && rules.authorization === undefined &&
      rules.methods === undefined && rules.url === undefined && rules.headerFilters.length === 0 &&
      rules.headerHash === undefined && rules.rate === undefined
    if (idle) return undefined
    return () => new HttpRequestStage(rules)
  },
}
