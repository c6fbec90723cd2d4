import { createHash } from 'node:crypto'
import { BlockList, isIP } from 'node:net'
import { type Address, formatAddress, parseAddress } from './net/address.js'
import { checkTimer, parseBytes, parseDuration } from './net/units.js'
import { ConfigError, type OptionNamer } from './ops/errors.js'
import { DEFAULT_DIFF_WINDOW, normalizeDiff, type DiffOptions } from './diff/diff-config.js'
import type { DiffConfig } from './diff/outcome.js'
import { flagName, option, optionByFlag } from './options.js'
import { sameEndpoint } from './mirrors/loop-guard.js'
import { normalizeHttpMirroring, type HttpMirroring, type HttpMirroringOptions } from './protocols/http/mirror-config.js'

/** TLS on a connection tcptee opens: `off`, `on` (encrypted, the certificate is not checked) or `verify` (checked). */
/** TLS to a server: `prefer` (TLS if the server agrees, else plain) exists only where TLS is negotiated in the protocol (postgres, mysql). */
export type TlsMode = 'off' | 'on' | 'verify' | 'prefer'

/** PROXY protocol header version: `v1` (text) or `v2` (binary). */
export type ProxyVersion = 'v1' | 'v2'

/** TLS for clients: paths of PEM files, read when the listener starts and again on reload. */
export interface ClientTlsFiles {
  readonly cert: string
  readonly key: string
  /** CAs that client certificates must be signed by; client certificates are not asked for when undefined. */
  readonly clientCa?: string | undefined
}

/**
 * Options accepted by {@link createDuplicator} and by the CLI. Addresses may be given as strings
 * (`":8080"`, `"host:8080"`, `"[::1]:8080"`) or `{ host, port }`; durations as milliseconds or strings
 * (`"500ms"`, `"20s"`, `"1m"`); sizes as bytes or strings (`"4MiB"`).
 */
export interface DuplicatorOptions extends DiffOptions, HttpMirroringOptions {
  /** Where to accept clients. Default `127.0.0.1:0` (a free port; read it back from `listen()`). */
  listen?: Address | string
  /** The production server. Its replies, and only its replies, go back to the client. */
  main: Address | string
  /**
   * Shadow servers: each gets a copy of every client byte; their replies are discarded.
   * A string entry may end in `@<percent>%` to sample that mirror at its own rate (`"10.0.0.5:6379@25%"`).
   */
  mirrors?: ReadonlyArray<Address | string>
  /** Mirrors that came from the config file (same syntax as `mirrors`): listed with origin `config`, replaced on reload. */
  fileMirrors?: ReadonlyArray<Address | string>
  /** Percentage of client connections mirrored (0-100, float), unless a mirror has its own `@n%`. Default 100. */
  percent?: number | string
  /** Seed for the sampling decisions: the same seed gives the same decisions for the same order of connections. */
  seed?: number | string
  /** A mirror failing continuously for this long is given up: removed if it was added at run time. Default 30m. */
  failAfter?: number | string
  /** This many consecutive mirror connections cut off (overflow, write timeout) put the mirror into backoff. Default 3. */
  cutOffThreshold?: number | string
  /** Clients open at once; beyond it new clients are closed at accept and counted. Default: no limit. */
  maxConnections?: number | string
  /** Bound of each mirror connection's write queue in bytes. Default 4 MiB. */
  mirrorBuffer?: number | string
  /** A mirror connection with queued bytes and no write progress for this long is cut off. Default 5s. */
  mirrorWriteTimeout?: number | string
  /**
   * Mirror writes within this window go out in one writev (and the mirror's replies come back in one read). Default
   * 20ms; 0 writes at once. A window of 64 KiB or more is flushed at once. Mirror latency does not
   * matter for shadowing, and every write syscall saved is CPU left for the main path.
   */
  mirrorBatch?: number | string
  /** Mirror connect timeout. Default 500ms (goduplicator's `-t`). */
  mirrorConnectTimeout?: number | string
  /** After a failed mirror connect, new clients skip that mirror for this long. Default 20s (goduplicator's `-d`). */
  retryDelay?: number | string
  /** Main connect timeout; the client is closed when it passes. Default 5s. */
  connectTimeout?: number | string
  /** On close(), open connections get this long to finish before they are destroyed. Default 10s. */
  shutdownTimeout?: number | string
  /** TLS for clients (certificate, key, optional client CA files). Or give `tlsCert`, `tlsKey`, `tlsClientCa`. */
  tls?: ClientTlsFiles
  /** TLS for clients: certificate file (PEM). Needs `tlsKey`. */
  tlsCert?: string
  /** TLS for clients: private key file (PEM). Needs `tlsCert`. */
  tlsKey?: string
  /** TLS for clients: require client certificates signed by the CAs in this file (PEM). Needs `tlsCert`. */
  tlsClientCa?: string
  /** TLS to main. Default `off`. */
  mainTls?: TlsMode | string
  /** TLS to every mirror. Default `off`. A mirror given as `tls://host:port` uses TLS whatever this says. */
  mirrorTls?: TlsMode | string
  /** CA file (PEM) that `verify` checks main's and mirrors' certificates against; default the system CAs. */
  tlsCa?: string
  /** Server name (SNI) sent to main and mirrors over TLS, and checked by `verify`; default their host. */
  tlsServername?: string
  /** Clients start with a PROXY protocol header (v1 or v2); its source address is the client's. Default false. */
  proxyProtocolIn?: boolean
  /** With `proxyProtocolIn`: only peers in these CIDRs or addresses may send a header (`"10.0.0.0/8,::1"` or a list). */
  proxyProtocolFrom?: string | readonly string[]
  /** Send main a PROXY protocol header with the client's address. Off by default. */
  proxyProtocolOut?: ProxyVersion | string
  /** Send every mirror a PROXY protocol header with the client's address; one mirror: `host:port@proxy-v2`. */
  mirrorProxyProtocol?: ProxyVersion | string
  /**
   * Log a line (info) for every client connection that closes normally. Default false: busy listeners would log a
   * line per connection. With `diff` on the line is logged anyway (it carries the comparison outcome), and so are
   * connections that end in a failure (main refused, timed out, reset), at warn.
   */
  logConnections?: boolean
  /** What the stream is: `tcp` (bytes only, the default) or a protocol whose mirror copies tcptee rewrites. */
  protocol?: ProtocolName | string
  /** File mapping mirror → user → password for logging in to mirrors (`--mirror-credentials`); needs `protocol`. */
  mirrorCredentials?: string
  /** Each client connection goes to ONE mirror, round robin, instead of to all of them (gor's `--split-output`). */
  mirrorSplit?: boolean | string
  /** Record every client connection (client bytes and main's replies) to this pcapng file; `FILE@25%` samples. */
  record?: string
  /** With `record`: the next file is started when one would grow past this size. Default 1 GiB. */
  recordMaxSize?: number | string
  /** With `record`: bound of the recorder's write queue in bytes. Default 16 MiB. */
  recordBuffer?: number | string
}

/** `--record`: where and how much. */
export interface RecordConfig {
  /** The first file; later ones are numbered (`traffic.1.pcapng`). */
  readonly path: string
  /** Its own sampling percentage (`FILE@25%`); undefined follows `percent`. */
  readonly percent: number | undefined
  readonly maxSize: number
  readonly buffer: number
}

/** The validated, normalised, frozen form of {@link DuplicatorOptions}. All durations in ms, sizes in bytes. */
export interface Config {
  /** Reply comparison (`--diff`); undefined when off. */
  readonly diff?: DiffConfig | undefined
  readonly listen: Address
  readonly main: Address
  readonly mirrors: readonly Address[]
  /** The same mirrors with their origin and own sampling percentage, if any. */
  readonly mirrorSpecs: readonly MirrorSpec[]
  readonly percent: number
  readonly seed: number | undefined
  readonly failAfter: number
  readonly cutOffThreshold: number
  /** Clients open at once (`--max-connections`); undefined: no limit. */
  readonly maxConnections: number | undefined
  readonly mirrorBuffer: number
  readonly mirrorWriteTimeout: number
  readonly mirrorBatch: number
  readonly mirrorConnectTimeout: number
  readonly retryDelay: number
  readonly connectTimeout: number
  readonly shutdownTimeout: number
  /** TLS for clients; plain TCP when undefined. Paths only: the files are read by the listener. */
  readonly tls: ClientTlsFiles | undefined
  readonly mainTls: TlsMode
  /** TLS to every mirror; see {@link mirrorTlsMode} for one mirror's. */
  readonly mirrorTls: TlsMode
  readonly tlsCa: string | undefined
  readonly tlsServername: string | undefined
  readonly proxyProtocolIn: boolean
  /** Peers allowed to send a PROXY header (CIDRs or addresses); empty: any peer. */
  readonly proxyProtocolFrom: readonly string[]
  readonly proxyProtocolOut: ProxyVersion | undefined
  /** PROXY header to every mirror; see {@link mirrorProxyVersion} for one mirror's. */
  readonly mirrorProxyProtocol: ProxyVersion | undefined
  /** `--record`; undefined when off. */
  readonly record: RecordConfig | undefined
  readonly logConnections: boolean
  readonly protocol: ProtocolName
  /** Path of the mirror credentials file; read by the duplicator (and again on reload). */
  readonly mirrorCredentials: string | undefined
  /** `--protocol http`: what is done to every mirror's requests (host, headers, filters); undefined for other protocols. */
  readonly http: HttpMirroring | undefined
  readonly mirrorSplit: boolean
}

/** Where a mirror target came from. */
export type MirrorOrigin = 'command-line' | 'config' | 'runtime'

/**
 * One mirror target as configured: `[tls://]host:port[@25%][@proxy-v1|@proxy-v2]`, suffixes in any order.
 * `percent` overrides the global sampling percentage for this mirror. The mirror's name is its plain `host:port`.
 */
export interface MirrorSpec {
  readonly address: Address
  readonly percent: number | undefined
  readonly origin: MirrorOrigin
  /** Given as `tls://host:port`: TLS to this mirror even when `mirrorTls` is off. Use {@link mirrorTlsMode}. */
  readonly tls: boolean
  /** Given with `@proxy-v1`/`@proxy-v2`: this mirror's PROXY header. Use {@link mirrorProxyVersion}. */
  readonly proxy: ProxyVersion | undefined
  /** The `--diff-baseline` target: mirrored like a mirror, compared as the measure of noise, never a candidate. */
  readonly baseline?: boolean
  /** `@host=NAME` (http): the Host header this mirror's requests carry. */
  readonly httpHost?: string | undefined
  /** `http://user:pass@host:port`: basic auth replacing the client's Authorization header. Never logged. */
  readonly basicAuth?: BasicAuth | undefined
  /** `@100rps` (http): at most this many requests per second go to this mirror; the rest are left out, counted. */
  readonly rps?: number | undefined
  /** `@20cps`: at most this many new connections per second go to this mirror; the rest are not mirrored (`limited`). */
  readonly cps?: number | undefined
}

/** User and password of `http://user:pass@host:port`. Its JSON shows a digest of the password, never the password. */
export interface BasicAuth {
  readonly user: string
  readonly password: string
}

function basicAuth (user: string, password: string): BasicAuth {
  const auth = { user, password }
  // JSON (reload comparisons, anything that prints a spec) sees that the password changed, never what it is.
  Object.defineProperty(auth, 'password', { enumerable: false, value: password })
  Object.defineProperty(auth, 'toJSON', { enumerable: false, value: () => ({ user, password: `sha256:${createHash('sha256').update(password).digest('hex').slice(0, 12)}` }) })
  return Object.freeze(auth)
}

export const DEFAULTS = Object.freeze({
  listenHost: '0.0.0.0',
  targetHost: '127.0.0.1',
  mirrorBuffer: 4 * 1024 * 1024,
  mirrorWriteTimeout: 5_000,
  mirrorBatch: 20,
  mirrorConnectTimeout: 500,
  retryDelay: 20_000,
  connectTimeout: 5_000,
  shutdownTimeout: 10_000,
  percent: 100,
  failAfter: 30 * 60_000,
  cutOffThreshold: 3,
  mainTls: 'off',
  mirrorTls: 'off',
})

const KEY: OptionNamer = (key) => key

/** Largest `mirrorBuffer`: it is per mirror connection. */
const MAX_MIRROR_BUFFER = 1024 ** 3

/**
 * Throws a ConfigError about option `key`. `text` writes the message with the options named by its argument: the
 * library's message names keys (`mirrorBuffer: ...`), the CLI's names flags (`--mirror-buffer: ...`).
 */
function fail (key: string, text: (name: OptionNamer) => string, cause?: unknown): never {
  throw new ConfigError(text(KEY), flagName(key), { key, render: text, cause })
}

/**
 * Runs a parser that prefixes its messages with the name it is given (parseAddress, parseDuration, parseBytes,
 * parsePercent) for option `key`, so that its errors are keyed like the rest.
 */
function keyed<T> (key: string, parse: (name: string) => T): T {
  try {
    return parse(key)
  } catch (err) {
    if (!(err instanceof ConfigError) || !err.message.startsWith(key)) throw err
    const rest = err.message.slice(key.length)
    return fail(key, (n) => n(key) + rest, err.cause)
  }
}

/** Parses a sampling percentage: `25`, `"25"`, `"25%"`, `"0.5"`; 0 to 100. `name` starts the error message. */
export function parsePercent (v: number | string, name: string): number {
  const text = String(v).trim()
  const n = /^\d+(\.\d+)?%?$/.test(text) ? Number(text.replace('%', '')) : Number.NaN
  if (!Number.isFinite(n) || n < 0 || n > 100) throw new ConfigError(`${name}: "${text}" is not a percentage between 0 and 100`, name)
  return n
}

/** `--protocol`: what the stream is. `tcp` is bytes only; the others have a module in src/protocols/registry.ts. */
export type ProtocolName = 'tcp' | 'postgres' | 'mysql' | 'redis' | 'http'
const PROTOCOLS: readonly ProtocolName[] = ['tcp', 'postgres', 'mysql', 'redis', 'http']

/** `mirrorCredentials` is a file path, and means something only with a protocol whose mirrors log in. */
function credentialsPath (opts: DuplicatorOptions): string | undefined {
  const file = opts.mirrorCredentials
  if (file === undefined || file === '') return undefined
  if (typeof file !== 'string') fail('mirrorCredentials', (n) => `${n('mirrorCredentials')} must be a file path`)
  if (opts.protocol === undefined || opts.protocol === 'tcp') {
    fail('mirrorCredentials', (n) => `${n('mirrorCredentials')} needs ${n('protocol')} postgres, mysql or redis (tcptee logs in to mirrors only for a protocol it speaks)`)
  }
  return file
}

const TLS_MODES: readonly TlsMode[] = ['off', 'on', 'verify', 'prefer']
/** Protocols that negotiate TLS inside the protocol (an SSLRequest), where `prefer` can fall back to plain text. */
const IN_PROTOCOL_TLS: readonly ProtocolName[] = ['postgres', 'mysql']

/** `mainTls` / `mirrorTls`: `prefer` only with a protocol that asks the server first. */
function tlsMode (opts: DuplicatorOptions, key: 'mainTls' | 'mirrorTls'): TlsMode {
  const mode = oneOf(opts[key], key, TLS_MODES) ?? 'off'
  if (mode === 'prefer' && !(IN_PROTOCOL_TLS as readonly string[]).includes(String(opts.protocol ?? 'tcp'))) {
    fail(key, (n) => `${n(key)} prefer needs ${n('protocol')} postgres or mysql (only they ask the server whether it speaks TLS)`)
  }
  return mode
}
const PROXY_VERSIONS: readonly ProxyVersion[] = ['v1', 'v2']

/**
 * Parses one mirror entry: `[tls://]host:port`, then any of `@<percent>%`, `@proxy-v1`, `@proxy-v2` in any order
 * (`"tls://host:6379@proxy-v2@25%"`). `@` cannot appear in a host name or port, so it does not clash with
 * comma-separated lists. `name` starts the error messages (`mirrors` in the library, `mirror` in the admin API).
 */
export function parseMirrorSpec (text: string, origin: MirrorOrigin, name = 'mirrors'): MirrorSpec {
  let rest = text.trim()
  const tls = /^tls:\/\//i.test(rest)
  const http = /^http:\/\//i.test(rest)
  if (tls) rest = rest.slice('tls://'.length)
  else if (http) rest = rest.slice('http://'.length)
  else if (/^[a-z][a-z0-9+.-]*:\/\//i.test(rest)) throw new ConfigError(`${name}: "${redact(text)}": only tls:// or http:// may precede a mirror address`, name)
  let parts = rest.split('@')
  let auth: BasicAuth | undefined
  // http://user:pass@host:port: the first part is a user when the second is an address, not a suffix.
  if (http && parts.length >= 2 && !isSuffix(parts[1]!)) {
    const userinfo = parts[0]!
    const colon = userinfo.indexOf(':')
    const decode = (s: string): string => {
      try { return decodeURIComponent(s) } catch { throw new ConfigError(`${name}: "${redact(text)}": bad %-escape in the user or password`, name) }
    }
    auth = basicAuth(decode(colon < 0 ? userinfo : userinfo.slice(0, colon)), decode(colon < 0 ? '' : userinfo.slice(colon + 1)))
    parts = parts.slice(1)
  }
  const [addressText = '', ...suffixes] = parts
  const address = parseAddress(addressText, name, DEFAULTS.targetHost, false)
  let percent: number | undefined
  let proxy: ProxyVersion | undefined
  let httpHost: string | undefined
  let rps: number | undefined
  let cps: number | undefined
  const shown = redact(text)
  for (const suffix of suffixes) {
    const s = suffix.trim()
    if (/^proxy-/i.test(s)) {
      const v = s.slice('proxy-'.length).toLowerCase()
      if (!(PROXY_VERSIONS as readonly string[]).includes(v)) throw new ConfigError(`${name}: "@${s}" in "${shown}" is not @proxy-v1 or @proxy-v2`, name)
      if (proxy !== undefined) throw new ConfigError(`${name}: "${shown}" gives @proxy-… twice`, name)
      proxy = v as ProxyVersion
    } else if (/^host=/i.test(s)) {
      const h = s.slice('host='.length)
      if (!/^[A-Za-z0-9._-]+(:\d{1,5})?$/.test(h)) throw new ConfigError(`${name}: "@${s}" in "${shown}" is not a host name (@host=staging.example.com)`, name)
      httpHost = h
    } else if (/^\d+(\.\d+)?(rps|cps)$/i.test(s)) {
      const n = Number(s.slice(0, -3))
      if (!(n > 0)) throw new ConfigError(`${name}: "@${s}" in "${shown}" must be more than 0`, name)
      if (s.toLowerCase().endsWith('rps')) rps = n
      else cps = n
    } else {
      if (percent !== undefined) throw new ConfigError(`${name}: "${shown}" gives a percentage twice`, name)
      percent = parsePercent(s, `${name} (${shown})`)
    }
  }
  const spec: MirrorSpec = { address, percent, origin, tls, proxy }
  return Object.freeze({ ...spec, ...(httpHost === undefined ? {} : { httpHost }), ...(auth === undefined ? {} : { basicAuth: auth }), ...(rps === undefined ? {} : { rps }), ...(cps === undefined ? {} : { cps }) })
}

/** A mirror entry as it may be shown: the password of `http://user:pass@` replaced. */
export function redact (text: string): string {
  return text.replace(/^(\s*http:\/\/[^:@/]*:)[^@]*@/i, '$1***@')
}

function isSuffix (s: string): boolean {
  const t = s.trim()
  return /^(proxy-|host=)/i.test(t) || /^\d+(\.\d+)?(%|rps|cps)?$/i.test(t)
}

/** The TLS mode of connections to one mirror: `mirrorTls`, or `on` for a `tls://` mirror when `mirrorTls` is off. */
export function mirrorTlsMode (spec: MirrorSpec, config: Pick<Config, 'mirrorTls'>): TlsMode {
  if (config.mirrorTls !== 'off') return config.mirrorTls
  return spec.tls ? 'on' : 'off'
}

/** The PROXY header sent to one mirror: its own `@proxy-vN`, else `mirrorProxyProtocol`; none when undefined. */
export function mirrorProxyVersion (spec: MirrorSpec, config: Pick<Config, 'mirrorProxyProtocol'>): ProxyVersion | undefined {
  return spec.proxy ?? config.mirrorProxyProtocol
}

function toAddress (v: Address | string | undefined, key: string, defaultHost: string, allowZero: boolean): Address {
  if (v === undefined) return fail(key, (n) => `${n(key)} is required`)
  if (typeof v === 'string' || typeof v === 'number') return keyed(key, (k) => parseAddress(String(v), k, defaultHost, allowZero))
  if (typeof v.host !== 'string' || !Number.isInteger(v.port)) return fail(key, (n) => `${n(key)}: expected { host, port }`)
  return keyed(key, (k) => parseAddress(formatAddress(v), k, defaultHost, allowZero))
}

function batchWindow (v: number | string): number {
  const ms = keyed('mirrorBatch', (k) => parseDuration(v, k))
  if (ms > 1000) fail('mirrorBatch', (n) => `${n('mirrorBatch')}: ${ms}ms is too long (at most 1s; 0 turns batching off)`)
  return ms
}

function positiveDuration (v: number | string | undefined, key: string, def: number): number {
  if (v === undefined) return def
  const ms = keyed(key, (k) => checkTimer(parseDuration(v, k), k))
  if (ms <= 0) fail(key, (n) => `${n(key)}: must be greater than 0`)
  return ms
}

function oneOf<T extends string> (v: string | undefined, key: string, allowed: readonly T[]): T | undefined {
  if (v === undefined) return undefined
  const text = String(v).trim()
  if (!(allowed as readonly string[]).includes(text)) fail(key, (n) => `${n(key)}: "${text}" is not one of ${allowed.join(', ')}`)
  return text as T
}

function fileName (v: string | undefined, key: string): string | undefined {
  if (v === undefined) return undefined
  if (String(v).trim() === '') fail(key, (n) => `${n(key)}: the file name is empty`)
  return String(v)
}

/** Options with a flag of their own for one field of `tls` (the CLI's form). */
function clientTls (opts: DuplicatorOptions): ClientTlsFiles | undefined {
  const flat = opts.tlsCert !== undefined || opts.tlsKey !== undefined || opts.tlsClientCa !== undefined
  if (opts.tls !== undefined && flat) fail('tlsCert', (n) => `${n('tlsCert')}: give tls, or ${n('tlsCert')}, ${n('tlsKey')} and ${n('tlsClientCa')}, not both`)
  const cert = fileName(opts.tls?.cert ?? opts.tlsCert, 'tlsCert')
  const key = fileName(opts.tls?.key ?? opts.tlsKey, 'tlsKey')
  const clientCa = fileName(opts.tls?.clientCa ?? opts.tlsClientCa, 'tlsClientCa')
  if (cert === undefined && key !== undefined) fail('tlsKey', (n) => `${n('tlsKey')} needs ${n('tlsCert')}`)
  if (cert !== undefined && key === undefined) fail('tlsCert', (n) => `${n('tlsCert')} needs ${n('tlsKey')}`)
  if (cert === undefined && clientCa !== undefined) fail('tlsClientCa', (n) => `${n('tlsClientCa')} needs ${n('tlsCert')}`)
  if (cert === undefined || key === undefined) return undefined
  return Object.freeze({ cert, key, clientCa })
}

/** Splits comma lists: `"a,b"` and `["a", "b,c"]` give every entry, trimmed, empty ones dropped. */
function entries (v: string | readonly string[]): string[] {
  return (typeof v === 'string' ? [v] : v).flatMap((e) => String(e).split(',')).map((s) => s.trim()).filter((s) => s !== '')
}

/** `10.0.0.0/8`, `fd00::/8` or a bare address; checked by node:net's BlockList, which the listener will use. */
function proxyPeers (opts: DuplicatorOptions): readonly string[] {
  if (opts.proxyProtocolFrom === undefined) return Object.freeze([])
  if (opts.proxyProtocolIn !== true) fail('proxyProtocolFrom', (n) => `${n('proxyProtocolFrom')} needs ${n('proxyProtocolIn')}`)
  const list = entries(opts.proxyProtocolFrom)
  for (const entry of list) {
    const slash = entry.indexOf('/')
    const address = slash < 0 ? entry : entry.slice(0, slash)
    const family = isIP(address)
    const bits = family === 4 ? 32 : 128
    const prefix = slash < 0 ? bits : /^\d{1,3}$/.test(entry.slice(slash + 1)) ? Number(entry.slice(slash + 1)) : Number.NaN
    let ok = family !== 0 && Number.isInteger(prefix) && prefix <= bits
    if (ok) {
      try {
        new BlockList().addSubnet(address, prefix, family === 4 ? 'ipv4' : 'ipv6')
      } catch {
        ok = false
      }
    }
    if (!ok) fail('proxyProtocolFrom', (n) => `${n('proxyProtocolFrom')}: "${entry}" is not an IPv4 or IPv6 address or CIDR (10.0.0.0/8, fd00::/8)`)
  }
  return Object.freeze(list)
}

function bool (v: boolean | string | undefined, key: string): boolean {
  if (v === undefined) return false
  if (v === true || v === 'true') return true
  if (v === false || v === 'false') return false
  return fail(key, (n) => `${n(key)}: "${String(v)}" is not true or false`)
}

/** Re-keys the `--diff*` errors of normalizeDiff, which name flags, like the rest. */
function diffConfig (opts: DuplicatorOptions): DiffConfig | undefined {
  try {
    return normalizeDiff(opts)
  } catch (err) {
    const def = err instanceof ConfigError && err.flag !== undefined ? optionByFlag(err.flag) : undefined
    if (def === undefined || !(err as ConfigError).message.startsWith((err as ConfigError).flag!)) throw err
    const rest = (err as ConfigError).message.slice((err as ConfigError).flag!.length)
    return fail(def.key, (n) => n(def.key) + rest, (err as ConfigError).cause)
  }
}

/**
 * Validates and normalises options into a frozen {@link Config}. Pure: knows nothing of argv, env or process, and
 * reads no file. Mirror lists may contain comma-separated entries (`"a:1,b:2"`). Throws {@link ConfigError} naming
 * the option (`key`, and `flag` as the CLI spells it).
 */
export function normalizeConfig (opts: DuplicatorOptions): Config {
  const listen = toAddress(opts.listen ?? `127.0.0.1:0`, 'listen', DEFAULTS.listenHost, true)
  const main = toAddress(opts.main, 'main', DEFAULTS.targetHost, false)
  const mirrors: Address[] = []
  const mirrorSpecs: MirrorSpec[] = []
  const seen = new Set<string>()
  const lists: Array<[ReadonlyArray<Address | string>, MirrorOrigin]> = [[opts.mirrors ?? [], 'command-line'], [opts.fileMirrors ?? [], 'config']]
  for (const [list, origin] of lists) {
    for (const entry of list) {
      const parts = typeof entry === 'string' ? entries(entry) : [entry]
      if (parts.length === 0) fail('mirrors', (n) => `${n('mirrors')}: "${String(entry)}" holds no address (host:port)`)
      for (const part of parts) {
        const spec: MirrorSpec = typeof part === 'string'
          ? keyed('mirrors', (k) => parseMirrorSpec(part, origin, k))
          : Object.freeze({ address: toAddress(part, 'mirrors', DEFAULTS.targetHost, false), percent: undefined, origin, tls: false, proxy: undefined })
        const m = spec.address
        const name = formatAddress(m)
        if (sameEndpoint(m, main)) fail('mirrors', (n) => `${n('mirrors')}: ${name} is also the main server (${n('main')})`)
        if (seen.has(name)) fail('mirrors', (n) => `${n('mirrors')}: ${name} is given twice`)
        seen.add(name)
        mirrors.push(m)
        mirrorSpecs.push(spec)
      }
    }
  }
  let seed: number | undefined
  if (opts.seed !== undefined) {
    seed = Number(opts.seed)
    if (!Number.isSafeInteger(seed) || String(opts.seed).trim() === '') fail('seed', (n) => `${n('seed')}: "${String(opts.seed)}" is not an integer`)
  }
  let cutOffThreshold: number = DEFAULTS.cutOffThreshold
  if (opts.cutOffThreshold !== undefined) {
    // Digits only: Number() would also take 0x10, 1e3 and " ".
    const text = String(opts.cutOffThreshold).trim()
    cutOffThreshold = /^\d{1,9}$/.test(text) ? Number(text) : Number.NaN
    if (!Number.isInteger(cutOffThreshold) || cutOffThreshold < 1) {
      fail('cutOffThreshold', (n) => `${n('cutOffThreshold')}: "${String(opts.cutOffThreshold)}" is not an integer of at least 1`)
    }
  }
  let mirrorBuffer = DEFAULTS.mirrorBuffer
  if (opts.mirrorBuffer !== undefined) {
    const v = opts.mirrorBuffer
    mirrorBuffer = keyed('mirrorBuffer', (k) => parseBytes(v, k))
    if (mirrorBuffer < 1024) fail('mirrorBuffer', (n) => `${n('mirrorBuffer')}: ${mirrorBuffer} bytes is too small (at least 1024)`)
    // Per mirror connection: a bound past memory is no bound (and the D7 accounting multiplies it per client).
    if (mirrorBuffer > MAX_MIRROR_BUFFER) fail('mirrorBuffer', (n) => `${n('mirrorBuffer')}: ${mirrorBuffer} bytes is too large (at most 1GiB per mirror connection)`)
  }
  let maxConnections: number | undefined
  if (opts.maxConnections !== undefined) {
    const text = String(opts.maxConnections).trim()
    maxConnections = /^\d{1,7}$/.test(text) ? Number(text) : 0
    if (maxConnections < 1) fail('maxConnections', (n) => `${n('maxConnections')}: "${text}" is not a number of connections (1 to 9999999)`)
  }
  const diff = diffConfig(opts)
  const baseline = diff?.baseline
  if (baseline !== undefined) {
    const name = formatAddress(baseline)
    if (sameEndpoint(baseline, main)) fail('diffBaseline', (n) => `${n('diffBaseline')}: ${name} is the main server (${n('main')}); the baseline is a second copy of it`)
    if (seen.has(name)) fail('diffBaseline', (n) => `${n('diffBaseline')}: ${name} is also a mirror (${n('mirrors')})`)
  }
  const percent = opts.percent
  return Object.freeze({
    maxConnections,
    listen,
    main,
    mirrors: Object.freeze(mirrors),
    mirrorSpecs: Object.freeze(mirrorSpecs),
    percent: percent === undefined ? DEFAULTS.percent : keyed('percent', (k) => parsePercent(percent, k)),
    seed,
    failAfter: positiveDuration(opts.failAfter, 'failAfter', DEFAULTS.failAfter),
    cutOffThreshold,
    mirrorBuffer,
    mirrorWriteTimeout: positiveDuration(opts.mirrorWriteTimeout, 'mirrorWriteTimeout', DEFAULTS.mirrorWriteTimeout),
    mirrorBatch: opts.mirrorBatch === undefined ? DEFAULTS.mirrorBatch : batchWindow(opts.mirrorBatch),
    mirrorConnectTimeout: positiveDuration(opts.mirrorConnectTimeout, 'mirrorConnectTimeout', DEFAULTS.mirrorConnectTimeout),
    retryDelay: positiveDuration(opts.retryDelay, 'retryDelay', DEFAULTS.retryDelay),
    connectTimeout: positiveDuration(opts.connectTimeout, 'connectTimeout', DEFAULTS.connectTimeout),
    shutdownTimeout: positiveDuration(opts.shutdownTimeout, 'shutdownTimeout', DEFAULTS.shutdownTimeout),
    diff,
    tls: clientTls(opts),
    mainTls: tlsMode(opts, 'mainTls'),
    mirrorTls: tlsMode(opts, 'mirrorTls'),
    tlsCa: fileName(opts.tlsCa, 'tlsCa'),
    tlsServername: opts.tlsServername === undefined ? undefined : serverName(opts.tlsServername),
    proxyProtocolIn: bool(opts.proxyProtocolIn, 'proxyProtocolIn'),
    proxyProtocolFrom: proxyPeers(opts),
    proxyProtocolOut: oneOf(opts.proxyProtocolOut, 'proxyProtocolOut', PROXY_VERSIONS),
    mirrorProxyProtocol: oneOf(opts.mirrorProxyProtocol, 'mirrorProxyProtocol', PROXY_VERSIONS),
    record: recordConfig(opts),
    logConnections: bool(opts.logConnections, 'logConnections'),
    protocol: oneOf(opts.protocol, 'protocol', PROTOCOLS) ?? 'tcp',
    mirrorCredentials: credentialsPath(opts),
    http: normalizeHttpMirroring(opts, mirrorSpecs),
    mirrorSplit: bool(opts.mirrorSplit, 'mirrorSplit'),
  })
}

const MIN_RECORD_SIZE = 64 * 1024

function recordConfig (opts: DuplicatorOptions): RecordConfig | undefined {
  if (opts.record === undefined) {
    for (const key of ['recordMaxSize', 'recordBuffer'] as const) {
      if (opts[key] !== undefined) fail(key, (n) => `${n(key)} needs ${n('record')}`)
    }
    return undefined
  }
  let path = String(opts.record).trim()
  let percent: number | undefined
  const m = /@([^@]*%)$/.exec(path)
  if (m !== null) {
    percent = keyed('record', (k) => parsePercent(m[1]!, k))
    path = path.slice(0, m.index)
  }
  if (path === '') fail('record', (n) => `${n('record')}: the file name is empty`)
  const size = (key: 'recordMaxSize' | 'recordBuffer', def: number): number => {
    const v = opts[key]
    if (v === undefined) return def
    const n = keyed(key, (k) => parseBytes(v, k))
    if (n < MIN_RECORD_SIZE) fail(key, (name) => `${name(key)}: ${n} bytes is too small (at least 64KiB)`)
    return n
  }
  return Object.freeze({ path, percent, maxSize: size('recordMaxSize', 1024 ** 3), buffer: size('recordBuffer', 16 * 1024 ** 2) })
}

function serverName (v: string): string {
  const text = String(v).trim()
  if (text === '' || !/^[A-Za-z0-9._-]+$/.test(text)) fail('tlsServername', (n) => `${n('tlsServername')}: "${text}" is not a host name`)
  return text
}

/**
 * One option's value in a normalised config, in a form that compares with JSON.stringify: what a reload compares
 * to tell whether the option changed. `key` is an option key of the table (src/options.ts), library scope.
 */
export function configValue (config: Config, key: string): unknown {
  switch (key) {
    case 'tlsCert': return config.tls?.cert
    case 'tlsKey': return config.tls?.key
    case 'tlsClientCa': return config.tls?.clientCa
    case 'diff': return config.diff?.kind
    // Without --diff these mean nothing: their defaults, so that turning --diff on changes --diff only.
    case 'diffWindow': return config.diff?.window ?? DEFAULT_DIFF_WINDOW
    case 'diffIgnoreHeaders': return config.diff?.ignoreHeaders ?? []
    case 'diffLog': return config.diff?.log
    case 'diffIgnore': return config.diff?.ignore ?? []
    case 'diffBaseline': return config.diff?.baseline
    case 'mirrors': return config.mirrorSpecs
    case 'mirrorHttpHost': return config.http?.host
    case 'mirrorHttpHeader': return config.http?.headers ?? []
    case 'mirrorHttpMethod': return config.http?.methods === undefined ? [] : [...config.http.methods]
    case 'mirrorHttpUrl': return config.http?.url?.source
    case 'mirrorHttpHeaderFilter': return (config.http?.headerFilters ?? []).map((f) => `${f.name}:${f.pattern.source}`)
    case 'mirrorHttpHeaderHash': return config.http?.headerHash
    case 'record': return config.record === undefined ? undefined : `${config.record.path}${config.record.percent === undefined ? '' : `@${config.record.percent}%`}`
    case 'recordMaxSize': return config.record?.maxSize ?? 1024 ** 3
    case 'recordBuffer': return config.record?.buffer ?? 16 * 1024 ** 2
    default:
      option(key) // a key that is not in the table is a programming error
      return (config as unknown as Record<string, unknown>)[key]
  }
}
