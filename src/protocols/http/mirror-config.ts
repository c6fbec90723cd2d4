import type { MirrorSpec } from '../../config.js'
import { ConfigError, type OptionNamer } from '../../ops/errors.js'
import { flagName } from '../../options.js'

/** The `--mirror-http-*` options as given (library keys; lists may be comma-separated strings). */
export interface HttpMirroringOptions {
  /** Host header of every mirror's requests (`--mirror-http-host`); one mirror: `-m host:port@host=NAME`. */
  mirrorHttpHost?: string
  /** Headers added to (or replaced in) every mirror's requests: `"X-Shadow: 1"` (`--mirror-http-header`, repeatable). */
  mirrorHttpHeader?: string | readonly string[]
  /** Only requests with these methods go to mirrors (`--mirror-http-method GET,HEAD`). */
  mirrorHttpMethod?: string | readonly string[]
  /** Only requests whose target (path and query) matches this regular expression go to mirrors. */
  mirrorHttpUrl?: string
  /** Only requests with a header matching: `"name:REGEX"` (repeatable; all must match). */
  mirrorHttpHeaderFilter?: string | readonly string[]
  /** Consistent sampling by a header's hash: `"user-id:1/32"` sends the requests of 1 in 32 values to mirrors. */
  mirrorHttpHeaderHash?: string
  /** `--protocol`, to check that these options are used with `http`. */
  protocol?: string
}

/** A header filter: the request must have header `name` (lower case) with a value matching `pattern`. */
export interface HeaderFilter {
  readonly name: string
  readonly pattern: RegExp
}

/** Consistent sampling: requests whose header `name` hashes into `part` of `of` buckets go to mirrors. */
export interface HeaderHash {
  readonly name: string
  readonly part: number
  readonly of: number
}

/** What `--protocol http` does to every mirror's requests. Per-mirror parts (`@host=`, basic auth, `@rps`) are in the MirrorSpec. */
export interface HttpMirroring {
  readonly host: string | undefined
  /** Header lines to set, in order: name as given, value. */
  readonly headers: ReadonlyArray<readonly [string, string]>
  /** Upper-case methods; undefined: any. */
  readonly methods: ReadonlySet<string> | undefined
  readonly url: RegExp | undefined
  readonly headerFilters: readonly HeaderFilter[]
  readonly headerHash: HeaderHash | undefined
}

const KEY: OptionNamer = (key) => key

function fail (key: string, text: (n: OptionNamer) => string): never {
  throw new ConfigError(text(KEY), flagName(key), { key, render: text })
}

function list (v: string | readonly string[] | undefined): string[] {
  if (v === undefined) return []
  return (typeof v === 'string' ? [v] : v).map((s) => String(s).trim()).filter((s) => s !== '')
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/

function regex (key: string, source: string): RegExp {
  try {
    return new RegExp(source)
  } catch (err) {
    return fail(key, (n) => `${n(key)}: "${source}" is not a regular expression (${(err as Error).message})`)
  }
}

/**
 * Validates the `--mirror-http-*` options and the per-mirror HTTP suffixes. Throws {@link ConfigError} naming the
 * option. Returns undefined when `protocol` is not `http` (and then none of them may be given).
 */
export function normalizeHttpMirroring (opts: HttpMirroringOptions, specs: readonly MirrorSpec[]): HttpMirroring | undefined {
  const keys = ['mirrorHttpHost', 'mirrorHttpHeader', 'mirrorHttpMethod', 'mirrorHttpUrl', 'mirrorHttpHeaderFilter', 'mirrorHttpHeaderHash'] as const
  if (String(opts.protocol ?? 'tcp').trim() !== 'http') {
    for (const key of keys) {
      const v = opts[key]
      if (v !== undefined && list(v).length > 0) fail(key, (n) => `${n(key)} needs ${n('protocol')} http`)
    }
    const spec = specs.find((s) => s.httpHost !== undefined || s.basicAuth !== undefined || s.rps !== undefined)
    if (spec !== undefined) fail('mirrors', (n) => `${n('mirrors')}: http://, @host= and @rps need ${n('protocol')} http`)
    return undefined
  }
  let host: string | undefined
  if (opts.mirrorHttpHost !== undefined) {
    host = String(opts.mirrorHttpHost).trim()
    if (!/^[A-Za-z0-9._-]+(:\d{1,5})?$/.test(host) && !/^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$/.test(host)) {
      fail('mirrorHttpHost', (n) => `${n('mirrorHttpHost')}: "${host}" is not a host name (staging.example.com or host:port)`)
    }
  }
  const headers: Array<readonly [string, string]> = []
  for (const h of list(opts.mirrorHttpHeader)) {
    const colon = h.indexOf(':')
    const name = colon < 0 ? '' : h.slice(0, colon).trim()
    const value = colon < 0 ? '' : h.slice(colon + 1).trim()
    if (!TOKEN.test(name) || /[\r\n\0]/.test(value)) fail('mirrorHttpHeader', (n) => `${n('mirrorHttpHeader')}: "${h}" is not "Name: value"`)
    headers.push([name, value])
  }
  let methods: Set<string> | undefined
  const m = list(opts.mirrorHttpMethod).flatMap((s) => s.split(',')).map((s) => s.trim().toUpperCase()).filter((s) => s !== '')
  if (m.length > 0) {
    for (const x of m) if (!TOKEN.test(x)) fail('mirrorHttpMethod', (n) => `${n('mirrorHttpMethod')}: "${x}" is not a method name`)
    methods = new Set(m)
  }
  const url = opts.mirrorHttpUrl === undefined || String(opts.mirrorHttpUrl) === '' ? undefined : regex('mirrorHttpUrl', String(opts.mirrorHttpUrl))
  const headerFilters: HeaderFilter[] = []
  for (const f of list(opts.mirrorHttpHeaderFilter)) {
    const colon = f.indexOf(':')
    const name = colon < 0 ? '' : f.slice(0, colon).trim()
    if (!TOKEN.test(name)) fail('mirrorHttpHeaderFilter', (n) => `${n('mirrorHttpHeaderFilter')}: "${f}" is not "name:REGEX"`)
    headerFilters.push({ name: name.toLowerCase(), pattern: regex('mirrorHttpHeaderFilter', f.slice(colon + 1)) })
  }
  let headerHash: HeaderHash | undefined
  if (opts.mirrorHttpHeaderHash !== undefined && String(opts.mirrorHttpHeaderHash).trim() !== '') {
    const text = String(opts.mirrorHttpHeaderHash).trim()
    const hm = /^([!#$%&'*+.^_`|~0-9A-Za-z-]+):(\d{1,9})\/(\d{1,9})$/.exec(text)
    const part = Number(hm?.[2])
    const of = Number(hm?.[3])
    if (hm === null || !(of > 0) || part > of) fail('mirrorHttpHeaderHash', (n) => `${n('mirrorHttpHeaderHash')}: "${text}" is not "name:K/N" with 0 <= K <= N, N > 0 (user-id:1/32)`)
    headerHash = { name: hm[1]!.toLowerCase(), part, of }
  }
  return Object.freeze({ host, headers: Object.freeze(headers), methods, url, headerFilters: Object.freeze(headerFilters), headerHash })
}
