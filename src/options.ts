/**
 * The option table: every tcptee option declared once. The CLI's yargs options, the config file's keys, the
 * `TCPTEE_*` environment names, the flag names in error messages, the reload rules and the README's flag table are
 * all generated from it (`cmd/tcptee/args.ts`, `src/config.ts`, `Duplicator.reconfigure`, `npm run docs:options`).
 *
 * Adding an option: add a row here, a field to `DuplicatorOptions` and `Config` (library options) or `CliOptions`
 * (CLI-only ones), and its validation to `normalizeConfig`. `test/options.test.ts` checks that the rest follows.
 */

/** What SIGHUP does with a changed value: `apply` it, report it as needing a `restart`, or `never` (not reloadable). */
export type ReloadRule = 'apply' | 'restart' | 'never'

/** `library`: a `DuplicatorOptions` field. `cli`: only the command line knows it (workers, admin, logging, config). */
export type OptionScope = 'library' | 'cli'

/** How a value is read: one string, a list (repeatable, comma-separated), an on/off switch, or one of `choices`. */
export type OptionType = 'string' | 'array' | 'boolean' | 'choices'

/**
 * The sections of `--help` and of the README's flag table, in their order, with their titles. Every row names one
 * (required: a new row must say where it belongs).
 */
export const OPTION_GROUPS = Object.freeze({
  targets: 'Listening and targets',
  mirrors: 'Mirrors',
  comparison: 'Comparing replies',
  tls: 'TLS',
  proxy: 'PROXY protocol',
  operations: 'Operations',
  logging: 'Logging',
} as const)
export type OptionGroup = keyof typeof OPTION_GROUPS

/**
 * What kind of value an option takes, as `--help` shows it (`--mirror-buffer <size>`); the help's epilogue says how
 * each is written. Switches and `choices` have none (help lists the choices instead).
 */
export type ValueKind = 'address' | 'duration' | 'size' | 'file' | 'number' | 'percent' | 'cidr' | 'name' | 'pattern' | ''

export interface OptionDef {
  /** camelCase key: the `DuplicatorOptions` field (library scope) or the `CliOptions` field (CLI scope). */
  readonly key: string
  /** Long flag without dashes (`mirror-buffer`); also the config file key. */
  readonly flag: string
  /** Other spellings without dashes: one letter is a short flag (`t` is `-t`), longer ones are long (`main` is `--main`). */
  readonly aliases: readonly string[]
  /** Spellings rewritten to the long flag before parsing, because getopt would split them (`-wt` is not `-w -t`). */
  readonly legacy: readonly string[]
  readonly type: OptionType
  /** The accepted values when `type` is `choices`. */
  readonly choices: readonly string[]
  /** The default as the user writes it (`500ms`, `4MiB`); undefined when there is none to write. */
  readonly default: string | undefined
  /** What no value means when there is no `default`: `required`, `none`, `off`, `random`. */
  readonly absent: string
  /** What kind of value it takes (`duration`, `size`, `address`); empty for switches and choices. */
  readonly value: ValueKind
  /** Its section in `--help` and in the README's table. */
  readonly group: OptionGroup
  /** One line for `--help`. */
  readonly help: string
  /** The README's "meaning" column (Markdown); `help` when the same. */
  readonly doc: string
  readonly scope: OptionScope
  readonly reload: ReloadRule
}

type RowRequired = 'key' | 'flag' | 'scope' | 'reload' | 'group'
/** A row as written in the table: `help` may be left out when it is `doc` without its Markdown backticks. */
type Row = Pick<OptionDef, RowRequired> & Partial<Omit<OptionDef, RowRequired | 'help' | 'doc'>> & ({ help: string, doc?: string } | { help?: string, doc: string })

/** `doc`'s text for `--help`: its Markdown backticks removed. */
function plain (doc: string): string {
  return doc.replaceAll('`', '')
}

function row (r: Row): OptionDef {
  const help = r.help ?? plain(r.doc!)
  return Object.freeze({
    aliases: [],
    legacy: [],
    type: r.choices === undefined ? 'string' : 'choices',
    choices: [],
    default: undefined,
    absent: 'none',
    value: '',
    ...r,
    help,
    doc: r.doc ?? help,
  })
}

const lib = 'library' as const
const cli = 'cli' as const

/** A file for the clients' TLS (`--tls-cert` and its company): applied on SIGHUP, which re-reads it. */
function tlsFileRow (r: Omit<Row, 'group' | 'value' | 'scope' | 'reload' | 'help'> & { doc: string }): OptionDef {
  return row({ ...r, group: 'tls', value: 'file', scope: lib, reload: 'apply', doc: `${r.doc}; re-read on SIGHUP` })
}

/** A rewrite or filter of `--protocol http` mirror copies: texts start "with --protocol http:"; restart to change. */
function httpMirrorRow (r: Omit<Row, 'group' | 'scope' | 'reload'> & { doc: string }): OptionDef {
  return row({ ...r, group: 'mirrors', scope: lib, reload: 'restart', help: `with --protocol http: ${r.help ?? plain(r.doc)}`, doc: `with \`--protocol http\`: ${r.doc}` })
}

/** Every option; `--help` and the README table show them by {@link OPTION_GROUPS}, in this order within a group. */
export const OPTIONS: readonly OptionDef[] = Object.freeze([
  row({ key: 'listen', group: 'targets', flag: 'listen', aliases: ['l'], absent: 'required', value: 'address', scope: lib, reload: 'restart',
    help: 'address to accept clients on ([host]:port; host defaults to 0.0.0.0)',
    doc: 'address to accept clients on; `:8080` listens on all IPv4 addresses' }),
  row({ key: 'main', group: 'targets', flag: 'forward', aliases: ['f', 'main'], absent: 'required', value: 'address', scope: lib, reload: 'restart',
    help: 'main (production) server; only its replies reach the client',
    doc: 'the main (production) server; only its replies reach the client' }),
  row({ key: 'mirrors', group: 'mirrors', flag: 'mirror', aliases: ['m'], type: 'array', value: 'address', scope: lib, reload: 'apply',
    help: 'mirror server; repeat or comma-separate for several; [tls://|http://[user:pass@]]host:port[@25%][@proxy-v1|@proxy-v2][@host=NAME][@100rps][@20cps]',
    doc: 'a mirror; repeat the flag or comma-separate (`-m a:1,b:2`); `tls://host:port` for TLS to it, `@25%` to sample it, `@proxy-v1`/`@proxy-v2` to send it a PROXY header, `@20cps` to cap its new connections per second; with `--protocol http`: `http://user:pass@host:port` (basic auth), `@host=NAME`, `@100rps`' }),
  row({ key: 'mirrorConnectTimeout', group: 'mirrors', flag: 'mirror-connect-timeout', aliases: ['t'], default: '500ms', value: 'duration', scope: lib, reload: 'restart',
    help: 'mirror connect timeout',
    doc: 'a mirror that has not accepted by then is given up for this connection' }),
  row({ key: 'retryDelay', group: 'mirrors', flag: 'retry-delay', aliases: ['d'], default: '20s', value: 'duration', scope: lib, reload: 'restart',
    help: 'after a failed mirror connect, skip that mirror for this long',
    doc: 'after a failed mirror connect, new connections skip that mirror this long' }),
  row({ key: 'mirrorWriteTimeout', group: 'mirrors', flag: 'mirror-write-timeout', legacy: ['-wt'], default: '5s', value: 'duration', scope: lib, reload: 'restart',
    help: 'cut off a mirror connection with queued bytes and no write progress for this long (goduplicator: -wt)',
    doc: 'a mirror connection with queued bytes and no write progress this long is cut off' }),
  row({ key: 'mirrorBuffer', group: 'mirrors', flag: 'mirror-buffer', default: '4MiB', value: 'size', scope: lib, reload: 'restart',
    help: 'bound of each mirror connection\'s write queue (bytes, KiB, MiB)',
    doc: 'bound of each mirror connection\'s write queue' }),
  row({ key: 'connectTimeout', group: 'targets', flag: 'connect-timeout', default: '5s', value: 'duration', scope: lib, reload: 'restart',
    help: 'main connect timeout; the client is closed when it passes' }),
  row({ key: 'shutdownTimeout', group: 'operations', flag: 'shutdown-timeout', default: '10s', value: 'duration', scope: lib, reload: 'restart',
    help: 'on SIGINT/SIGTERM, how long open connections may finish' }),
  row({ key: 'logLevel', group: 'logging', flag: 'log-level', choices: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'], default: 'info', scope: cli, reload: 'restart',
    help: 'log level',
    doc: '`fatal` `error` `warn` `info` `debug` `trace` `silent`' }),
  row({ key: 'logFormat', group: 'logging', flag: 'log-format', choices: ['json', 'pretty'], default: 'json', scope: cli, reload: 'restart',
    help: 'json lines, or human-readable (one line per event)',
    doc: '`json` (one object per line on stdout) or `pretty` (one line per event)' }),
  row({ key: 'logConnections', group: 'logging', flag: 'log-connections', type: 'boolean', absent: 'off', scope: lib, reload: 'restart',
    help: 'log one line per client connection when it closes (on with --diff too); connections that hurt a client (main refused, timed out) are logged at warn either way',
    doc: 'log one line per client connection when it closes (on with `--diff` too: the line carries the comparison outcome); those that hurt a client (main refused, timed out) are logged at `warn` either way' }),
  row({ key: 'mirrorBatch', group: 'mirrors', flag: 'mirror-batch', default: '20ms', value: 'duration', scope: lib, reload: 'restart',
    help: 'mirror writes within this window go out as one writev (0: at once); mirrors may lag by this much',
    doc: 'mirror writes within this window go out as one `writev`; `0` writes at once (see [docs/benchmark.md](docs/benchmark.md))' }),
  row({ key: 'workers', group: 'operations', flag: 'workers', default: '1', value: 'number', scope: cli, reload: 'restart',
    help: 'worker processes sharing the listen port (node:cluster); a number or "auto" (one per CPU)',
    doc: 'worker processes sharing the listen port (node:cluster); a number or `auto` (one per CPU); see [docs/benchmark.md](docs/benchmark.md) for when it helps' }),
  row({ key: 'percent', group: 'mirrors', flag: 'percent', aliases: ['p'], default: '100', value: 'percent', scope: lib, reload: 'apply',
    help: 'percentage of client connections mirrored (0-100); per mirror: -m host:port@25%',
    doc: 'percentage of client connections mirrored; per mirror: `-m host:port@25%`' }),
  row({ key: 'seed', group: 'mirrors', flag: 'seed', absent: 'random', value: 'number', scope: lib, reload: 'restart',
    help: 'seed for the sampling decisions (reproducible runs)',
    doc: 'seed for the sampling decisions (reproducible)' }),
  row({ key: 'failAfter', group: 'mirrors', flag: 'fail-after', default: '30m', value: 'duration', scope: lib, reload: 'restart',
    help: 'a mirror failing continuously this long is removed if added at run time',
    doc: 'a mirror failing continuously this long is removed if it was added at run time' }),
  row({ key: 'cutOffThreshold', group: 'mirrors', flag: 'cutoff-threshold', default: '3', value: 'number', scope: lib, reload: 'restart',
    help: 'consecutive mirror connections cut off (overflow, write timeout) before the mirror backs off' }),
  row({ key: 'maxConnections', group: 'operations', flag: 'max-connections', absent: 'no limit', value: 'number', scope: lib, reload: 'restart',
    help: 'clients open at once; beyond it new clients are closed at accept (counted); each client takes 2 + mirrors descriptors',
    doc: 'clients open at once; beyond it new clients are closed at accept and counted; each client takes 2 + mirrors descriptors (a warning at start when `ulimit -n` is too low)' }),
  row({ key: 'admin', group: 'operations', flag: 'admin', absent: 'off', value: 'address', scope: cli, reload: 'restart',
    help: 'serve the admin HTTP endpoint (mirrors, metrics, healthz) on this address, e.g. 127.0.0.1:9900',
    doc: 'admin HTTP endpoint (`/mirrors`, `/metrics`, `/healthz`), e.g. `127.0.0.1:9900`' }),
  row({ key: 'metricsMaxMirrors', group: 'operations', flag: 'metrics-max-mirrors', default: '200', value: 'number', scope: cli, reload: 'restart',
    help: 'mirrors with their own series in /metrics; the rest are summed under mirror="other"',
    doc: 'mirrors with their own series in `/metrics` (the first added); the rest are summed under `mirror="other"`, so a scrape stays small with thousands of mirrors' }),
  row({ key: 'adminAuthFile', group: 'operations', flag: 'admin-auth-file', value: 'file', scope: cli, reload: 'restart',
    help: 'file with user:password: basic auth for the admin endpoint',
    doc: 'file holding `user:password`: basic auth for the admin endpoint' }),
  row({ key: 'config', group: 'operations', flag: 'config', value: 'file', scope: cli, reload: 'never',
    help: 'YAML or JSON file with the same keys as the long flags; flags and TCPTEE_* override it; re-read on SIGHUP',
    doc: 'YAML or JSON file with the same keys as the long flags; re-read on SIGHUP' }),
  row({ key: 'diff', group: 'comparison', flag: 'diff', choices: ['bytes', 'redis', 'http', 'postgres', 'mysql'], absent: 'off', scope: lib, reload: 'restart',
    help: 'compare each mirror\'s replies with main\'s: outcome per mirror in the close log line and the counters',
    doc: 'compare each mirror\'s replies with main\'s: `bytes`, `redis`, `http`, `postgres` or `mysql` (see [docs/comparing-replies.md](docs/comparing-replies.md))' }),
  row({ key: 'diffWindow', group: 'comparison', flag: 'diff-window', default: '4MiB', value: 'size', scope: lib, reload: 'restart',
    help: 'bytes of not-yet-matched replies held per mirror connection before the comparison is abandoned',
    doc: 'not-yet-matched reply bytes held per mirror connection before the comparison is abandoned' }),
  row({ key: 'diffIgnoreHeaders', group: 'comparison', flag: 'diff-ignore-header', type: 'array', value: 'name', scope: lib, reload: 'restart',
    help: 'with --diff http: response headers not compared; repeat or comma-separate (date,server,x-request-id)',
    doc: 'with `--diff http`: headers not compared (repeat or comma-separate)' }),
  row({ key: 'diffLog', group: 'comparison', flag: 'diff-log', value: 'file', scope: lib, reload: 'restart',
    help: 'append one JSON line per divergence to this file (rate-limited)' }),
  row({ key: 'diffIgnore', group: 'comparison', flag: 'diff-ignore', type: 'array', value: 'pattern', absent: 'per comparer', scope: lib, reload: 'restart',
    help: 'with --diff redis|http|postgres: requests compared for framing only (CLIENT ID, COMMAND*, GET /health*); replaces the default list, a leading + extends it, none empties it',
    doc: 'with `--diff redis`/`http`/`postgres`: requests whose replies are compared for framing only and counted as ignored (`COMMAND*,INFO,CLIENT ID`, `GET /health*`); replaces the comparer\'s default list, a leading `+` extends it (`+GET cache:*`), `none` empties it' }),
  row({ key: 'diffBaseline', group: 'comparison', flag: 'diff-baseline', value: 'address', absent: 'off', scope: lib, reload: 'restart',
    help: 'with --diff redis|http|postgres: a second copy of main that gets a mirror copy; where main and it differ, a mirror\'s difference counts as noise',
    doc: 'with `--diff redis`/`http`/`postgres`: a second copy of main (same data and version) that gets a mirror copy; where main and it differ, a mirror\'s difference counts as `noise`, not `diverged`' }),
  tlsFileRow({ key: 'tlsCert', flag: 'tls-cert', absent: 'off', doc: 'accept clients over TLS with this certificate (PEM); needs `--tls-key`' }),
  tlsFileRow({ key: 'tlsKey', flag: 'tls-key', doc: 'private key (PEM) of `--tls-cert`' }),
  tlsFileRow({ key: 'tlsClientCa', flag: 'tls-client-ca', doc: 'require client certificates signed by these CAs (PEM); needs `--tls-cert`' }),
  row({ key: 'mainTls', group: 'tls', flag: 'main-tls', choices: ['off', 'on', 'verify', 'prefer'], default: 'off', scope: lib, reload: 'restart',
    help: 'TLS to main: off, on (encrypt, do not check the certificate), verify (check it against --tls-ca or the system CAs), or prefer (--protocol postgres/mysql: TLS if main agrees, else plain)',
    doc: 'TLS to main: `off`, `on` (encrypt, certificate not checked), `verify` (checked against `--tls-ca` or the system CAs), or `prefer` (`--protocol postgres`/`mysql` only: TLS if main agrees, else plain text)' }),
  row({ key: 'mirrorTls', group: 'tls', flag: 'mirror-tls', choices: ['off', 'on', 'verify', 'prefer'], default: 'off', scope: lib, reload: 'restart',
    help: 'TLS to every mirror: off, on, verify or prefer (as --main-tls); a single mirror: -m tls://host:port',
    doc: 'TLS to every mirror: `off`, `on`, `verify` or `prefer` (as `--main-tls`); one mirror: `-m tls://host:port`' }),
  row({ key: 'tlsCa', group: 'tls', flag: 'tls-ca', value: 'file', absent: 'system CAs', scope: lib, reload: 'restart',
    help: 'CA certificates (PEM) that verify main\'s and mirrors\' certificates with verify' }),
  row({ key: 'tlsServername', group: 'tls', flag: 'tls-servername', value: 'name', absent: 'the host', scope: lib, reload: 'restart',
    doc: 'server name (SNI) sent to main and mirrors over TLS, and checked with `verify`' }),
  row({ key: 'proxyProtocolIn', group: 'proxy', flag: 'proxy-protocol-in', type: 'boolean', absent: 'off', scope: lib, reload: 'restart',
    help: 'clients start with a PROXY protocol header (v1 or v2); the address in it is the client address' }),
  row({ key: 'proxyProtocolFrom', group: 'proxy', flag: 'proxy-protocol-from', type: 'array', value: 'cidr', absent: 'any', scope: lib, reload: 'restart',
    doc: 'with `--proxy-protocol-in`: only peers in these CIDRs or addresses may send a PROXY header; repeat or comma-separate' }),
  row({ key: 'proxyProtocolOut', group: 'proxy', flag: 'proxy-protocol-out', choices: ['v1', 'v2'], absent: 'off', scope: lib, reload: 'restart',
    doc: 'send main a PROXY protocol header (`v1` text or `v2` binary) with the client address' }),
  row({ key: 'mirrorProxyProtocol', group: 'proxy', flag: 'mirror-proxy-protocol', choices: ['v1', 'v2'], absent: 'off', scope: lib, reload: 'restart',
    help: 'send every mirror a PROXY protocol header; a single mirror: -m host:port@proxy-v2',
    doc: 'send every mirror a PROXY protocol header (`v1` or `v2`); one mirror: `-m host:port@proxy-v2`' }),
  row({ key: 'record', group: 'operations', flag: 'record', value: 'file', absent: 'off', scope: lib, reload: 'restart',
    help: 'record every client connection (client bytes and main\'s replies) to this pcapng file (mode 0600); FILE@25% samples',
    doc: 'record each client connection with main\'s replies to this pcapng file (0600), readable by Wireshark and `tcptee replay`; `FILE@25%` samples (see [docs/recording.md](docs/recording.md))' }),
  row({ key: 'recordMaxSize', group: 'operations', flag: 'record-max-size', default: '1GiB', value: 'size', scope: lib, reload: 'restart',
    doc: 'with `--record`: start the next file (`traffic.1.pcapng`, ...) when one would grow past this size' }),
  row({ key: 'recordBuffer', group: 'operations', flag: 'record-buffer', default: '16MiB', value: 'size', scope: lib, reload: 'restart',
    help: 'with --record: bound of the recorder\'s write queue; connections that do not fit are left out of the recording',
    doc: 'with `--record`: bound of the recorder\'s write queue; when the disk falls behind, connections are left out whole (counted, logged once)' }),
  row({ key: 'protocol', group: 'mirrors', flag: 'protocol', choices: ['tcp', 'postgres', 'mysql', 'redis', 'http'], default: 'tcp', scope: lib, reload: 'restart',
    help: 'what the stream is: tcp (bytes only) or a protocol whose mirrors tcptee logs in to or rewrites: postgres, mysql, redis, http',
    doc: 'what the stream is: `tcp` (bytes only, the default) or a protocol whose mirror copies tcptee rewrites (logs in with `--mirror-credentials`): `postgres`, `mysql`, `redis`, `http`' }),
  row({ key: 'mirrorCredentials', group: 'mirrors', flag: 'mirror-credentials', value: 'file', scope: lib, reload: 'apply',
    help: 'YAML or JSON file: mirror -> user -> password that tcptee logs in to mirrors with ("*" wildcards, env:NAME); re-read on SIGHUP',
    doc: 'YAML or JSON file mapping mirror (as in `-m`) → user → password that tcptee logs in to mirrors with; `"*"` for any mirror or user, `env:NAME` reads a variable; needs `--protocol`; re-read on SIGHUP' }),
  httpMirrorRow({ key: 'mirrorHttpHost', flag: 'mirror-http-host', value: 'name', absent: 'as sent',
    help: 'the Host header of every mirror\'s requests; one mirror: -m host:port@host=NAME',
    doc: 'the `Host` header of mirrors\' requests; one mirror: `-m host:port@host=NAME`' }),
  httpMirrorRow({ key: 'mirrorHttpHeader', flag: 'mirror-http-header', type: 'array', value: 'name',
    help: 'add (or replace) this header in mirrors\' requests; repeatable',
    doc: 'add or replace this header in mirrors\' requests (`\'X-Shadow: 1\'`); repeatable' }),
  httpMirrorRow({ key: 'mirrorHttpMethod', flag: 'mirror-http-method', type: 'array', value: 'name', absent: 'any',
    doc: 'only requests with these methods go to mirrors (`GET,HEAD`)' }),
  httpMirrorRow({ key: 'mirrorHttpUrl', flag: 'mirror-http-url', value: 'name', absent: 'any',
    help: 'only requests whose target (path?query) matches go to mirrors',
    doc: 'only requests whose target (path and query) matches go to mirrors' }),
  httpMirrorRow({ key: 'mirrorHttpHeaderFilter', flag: 'mirror-http-header-filter', type: 'array', value: 'name',
    help: 'only requests with a header matching go to mirrors; repeatable (all must match)',
    doc: 'only requests with this header matching go to mirrors; repeatable, all must match' }),
  httpMirrorRow({ key: 'mirrorHttpHeaderHash', flag: 'mirror-http-header-hash', value: 'name',
    help: 'consistent sampling: requests whose header value hashes into K of N buckets go to mirrors (user-id:1/32)',
    doc: 'consistent sampling, requests whose header hashes into K of N buckets go to mirrors (`user-id:1/32`: the same users always)' }),
  row({ key: 'mirrorSplit', group: 'mirrors', flag: 'mirror-split', type: 'boolean', absent: 'off', scope: lib, reload: 'restart',
    help: 'each client connection goes to one mirror (round robin) instead of all of them',
    doc: 'each client connection goes to ONE mirror, round robin, instead of to all of them (gor\'s `--split-output`)' }),
])

const BY_KEY = new Map(OPTIONS.map((o) => [o.key, o]))
const BY_FLAG = new Map(OPTIONS.flatMap((o) => [[o.flag, o] as const, ...o.aliases.filter((a) => a.length > 1).map((a) => [a, o] as const)]))

/** The row of `key`; throws on a key that is not in the table (a programming error). */
export function option (key: string): OptionDef {
  const o = BY_KEY.get(key)
  if (o === undefined) throw new Error(`no option "${key}" in src/options.ts`)
  return o
}

/** The row whose long flag (or long alias) is `flag`, with or without its dashes. */
export function optionByFlag (flag: string): OptionDef | undefined {
  return BY_FLAG.get(flag.replace(/^--?/, ''))
}

/** `--mirror-buffer` for `mirrorBuffer`: how the CLI names an option key (in error messages and reload reports). */
export function flagName (key: string): string {
  const o = BY_KEY.get(key)
  return o === undefined ? key : `--${o.flag}`
}

/** `TCPTEE_MIRROR_BUFFER` for `mirror-buffer`. */
export function envName (o: OptionDef): string {
  return `TCPTEE_${o.flag.replaceAll('-', '_').toUpperCase()}`
}

/** Every spelling of an option as the user types it: `-f`, `--forward`, `--main`. */
export function spellings (o: OptionDef): string[] {
  const short = o.aliases.filter((a) => a.length === 1).map((a) => `-${a}`)
  const long = o.aliases.filter((a) => a.length > 1).map((a) => `--${a}`)
  return [...short, ...o.legacy, `--${o.flag}`, ...long]
}

/** The options whose changes SIGHUP reports as needing a restart, for one scope. */
export function restartOptions (scope: OptionScope): OptionDef[] {
  return OPTIONS.filter((o) => o.scope === scope && o.reload === 'restart')
}

/** Markdown escaping for a table cell: a `|` would end the cell. */
function cell (text: string): string {
  return text.replaceAll('|', '\\|')
}

/**
 * The README's flag table (between `<!-- options:start -->` and `<!-- options:end -->`), generated from
 * {@link OPTIONS}. `npm run docs:options` writes it; `test/options.test.ts` checks the README has it.
 */
export function optionsMarkdownTable (): string {
  const lines = ['| flag | env | default | meaning |', '|---|---|---|---|']
  for (const [group, title] of Object.entries(OPTION_GROUPS) as Array<[OptionGroup, string]>) {
    const rows = OPTIONS.filter((o) => o.group === group)
    if (rows.length > 0) lines.push(`| **${title}** | | | |`)
    for (const o of rows) {
      const flags = spellings(o).map((s) => `\`${s}\``).join(', ')
      const def = o.default !== undefined ? `\`${o.default}\`` : o.absent
      lines.push(`| ${flags} | \`${envName(o)}\` | ${cell(def)} | ${cell(o.doc)} |`)
    }
  }
  return lines.join('\n') + '\n'
}
