/**
 * argv, environment and `--config` file → {@link CliOptions}, everything generated from the option table
 * (src/options.ts). Precedence: command line, then `TCPTEE_*`, then the file, then the defaults (which
 * normalizeConfig applies for library options, and {@link parseCli} for CLI-only ones).
 */
import { availableParallelism } from 'node:os'
import yargs, { type Options } from 'yargs'
import { hideBin } from 'yargs/helpers'
import { ConfigError } from '../../src/ops/errors.js'
import type { DuplicatorOptions } from '../../src/config.js'
import { envName, OPTIONS, spellings, type OptionDef } from '../../src/options.js'
import { VERSION } from '../../src/ops/version.js'
import { SUBCOMMANDS } from './commands.js'
import { loadConfigFile, type FileSchema } from './config-file.js'
import { helpText } from './help.js'
import { closest } from './suggest.js'

export interface CliOptions extends DuplicatorOptions {
  /** Worker processes (1: no cluster). */
  workers: number
  logLevel: string
  logFormat: 'json' | 'pretty'
  /** `--admin`: where to serve the admin HTTP endpoint; off when undefined. */
  admin: string | undefined
  /** `--admin-auth-file`: file holding `user:password` for the admin endpoint's basic auth. */
  adminAuthFile: string | undefined
  /** `--metrics-max-mirrors`: mirrors with series of their own in `/metrics`. */
  metricsMaxMirrors?: number | undefined
  /** `--config`: the config file, re-read on SIGHUP. */
  config: string | undefined
}

/** The keys a config file may hold (every long flag and long alias) and how each is read. */
export function fileSchema (): FileSchema {
  const schema: Record<string, 'scalar' | 'list' | 'boolean'> = {}
  for (const o of OPTIONS) {
    for (const name of [o.flag, ...o.aliases.filter((a) => a.length > 1)]) {
      schema[name] = o.type === 'array' ? 'list' : o.type === 'boolean' ? 'boolean' : 'scalar'
    }
  }
  return schema
}

/**
 * goduplicator spells its write timeout `-wt`, which any getopt-style parser reads as `-w -t`.
 * Rewrite such spellings (and `-wt=20ms`) to the long name before yargs sees them.
 */
export function rewriteLegacyFlags (argv: readonly string[]): string[] {
  const legacy = new Map(OPTIONS.flatMap((o) => o.legacy.map((l) => [l, `--${o.flag}`] as const)))
  return argv.map((a) => {
    const eq = a.indexOf('=')
    const long = legacy.get(eq < 0 ? a : a.slice(0, eq))
    return long === undefined ? a : eq < 0 ? long : `${long}${a.slice(eq)}`
  })
}

/**
 * `-t -1s`: a value that starts with `-` and a digit would be read as the flags `-1 -s`. Join it to its flag
 * (`-t=-1s`) so that the option's own check says what is wrong with it.
 */
export function joinNegativeValues (argv: readonly string[]): string[] {
  const takesValue = new Set(OPTIONS.filter((o) => o.type !== 'boolean').flatMap((o) => [`--${o.flag}`, ...o.aliases.map((a) => (a.length === 1 ? '-' : '--') + a), ...o.legacy]))
  const out: string[] = []
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!
    const next = argv[i + 1]
    if (takesValue.has(a) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${a}=${next}`)
      i++
    } else {
      out.push(a)
    }
  }
  return out
}

/** One option table row as a yargs option (also used by `tcptee completion`). */
export function yargsOption (o: OptionDef): Options {
  const shown = o.default ?? (o.absent === 'none' ? undefined : o.absent)
  return {
    alias: [...o.aliases],
    type: o.type === 'boolean' ? 'boolean' : 'string',
    ...(o.type === 'array' ? { array: true } : {}),
    ...(o.type === 'choices' ? { choices: [...o.choices] } : {}),
    ...(shown === undefined ? {} : { defaultDescription: shown }),
    describe: o.help,
  }
}

/** A value from argv/env or the file: one string (a flag given twice is an error), a list, or a switch. */
function read (o: OptionDef, v: unknown): unknown {
  const flag = `--${o.flag}`
  if (o.type === 'array') return (Array.isArray(v) ? v : [v]).map(String)
  if (o.type === 'boolean') {
    if (typeof v === 'boolean') return v
    if (v === 'true' || v === 'false') return v === 'true'
    throw new ConfigError(`${flag}: "${String(v)}" is not true or false`, flag)
  }
  if (Array.isArray(v)) throw new ConfigError(`${flag} given ${v.length} times; give it once`, flag)
  const text = String(v)
  if (o.type === 'choices' && !o.choices.includes(text)) throw new ConfigError(`${flag}: "${text}" is not one of ${o.choices.join(', ')}`, flag)
  return text
}

/** Values a subcommand sets itself (`tcptee wrap`: listen on $PORT, forward to the app); they win over the file. */
export interface ParseFixed {
  listen?: string
  main?: string
}

/** `--help`/`-h` or `--version` among the arguments (before a `--`): what to print instead of running. */
function infoRequest (argv: readonly string[]): 'help' | 'version' | undefined {
  const end = argv.indexOf('--')
  const args = end < 0 ? argv : argv.slice(0, end)
  if (args.some((a) => a === '--help' || a === '-h')) return 'help'
  if (args.includes('--version')) return 'version'
  return undefined
}

/** Turns argv and the environment (and the file they name) into CLI options; throws ConfigError (with the flag) on bad input. */
export async function parseCli (argv: readonly string[] = hideBin(process.argv), fixed: ParseFixed = {}): Promise<CliOptions> {
  const info = infoRequest(argv)
  if (info !== undefined) {
    const commands = Object.entries(SUBCOMMANDS).map(([name, c]) => [name, c.describe] as const)
    process.stdout.write(info === 'help' ? helpText(process.stdout.columns, commands) : `${VERSION}\n`)
    return Promise.reject(new HelpShown())
  }
  let parser = yargs(joinNegativeValues(rewriteLegacyFlags(argv)))
    .scriptName('tcptee')
    // yargs would otherwise answer in the language of LANG/LC_ALL, half of it: our own messages are English.
    .locale('en')
    .env('TCPTEE')
  for (const o of OPTIONS) parser = parser.option(o.flag, yargsOption(o))
  parser = parser
    .strict()
    // Our own --help (help.ts) and --version (tcptee's package.json, not the one nearest to the working directory).
    .version(false)
    .help(false)
    .exitProcess(false)
    .fail(strictFail)
  // yargs has no defaults and no config file here: what it returns was given on the command line or in the
  // environment, and nothing else. The file fills in the rest below, so which source set a value is never guessed.
  const a = await parser.parse()
  const given = (o: OptionDef): unknown => a[o.flag]
  const configOption = OPTIONS.find((o) => o.key === 'config')!
  const configFile = given(configOption) === undefined ? undefined : read(configOption, given(configOption)) as string
  const file = configFile === undefined ? {} : loadConfigFile(configFile, fileSchema())
  const fromFile = (o: OptionDef): unknown => [o.flag, ...o.aliases].map((n) => file[n]).find((v) => v !== undefined)

  const out: Record<string, unknown> = {}
  for (const o of OPTIONS) {
    const v = given(o) ?? fromFile(o)
    if (v !== undefined) out[o.key] = read(o, v)
  }
  if (fixed.listen !== undefined) out['listen'] = fixed.listen
  if (fixed.main !== undefined) out['main'] = fixed.main
  if (out['listen'] === undefined) throw new ConfigError('--listen (-l) is required: the address to accept clients on, e.g. -l :8080', '--listen')
  if (out['main'] === undefined) throw new ConfigError('--forward (-f) is required: the main server, e.g. -f :8081', '--forward')
  // Mirrors from the file have origin "config" and are replaced on reload. A list from the command line or the
  // environment replaces the file's.
  const mirrorsFromFile = given(OPTIONS.find((o) => o.key === 'mirrors')!) === undefined
  const mirrors = (out['mirrors'] ?? []) as string[]
  const withDefault = (key: string): string => String(out[key] ?? OPTIONS.find((o) => o.key === key)!.default)
  return {
    ...out as unknown as DuplicatorOptions,
    mirrors: mirrorsFromFile ? [] : mirrors,
    fileMirrors: mirrorsFromFile ? mirrors : [],
    workers: parseWorkers(withDefault('workers')),
    logLevel: withDefault('logLevel'),
    logFormat: withDefault('logFormat') === 'pretty' ? 'pretty' : 'json',
    admin: out['admin'] as string | undefined,
    adminAuthFile: out['adminAuthFile'] as string | undefined,
    metricsMaxMirrors: parseCount(withDefault('metricsMaxMirrors'), '--metrics-max-mirrors', 1_000_000),
    config: configFile,
  }
}

/**
 * yargs' "Unknown argument(s): mirro, mirroBuffer" as one line of ours: each name spelt as the user did (a flag, or
 * the `TCPTEE_*` variable it came from), with the closest spelling of the option table when it looks like a typo.
 */
function unknownMessage (list: string): string {
  const reported = list.split(', ')
  // yargs lists both --mirro-buffer and its camelCase twin mirroBuffer: keep the spelling the user typed.
  const kebab = (f: string): string => f.replace(/([A-Z])/g, '-$1').toLowerCase()
  const named = reported.filter((f) => !(/[A-Z]/.test(f) && reported.includes(kebab(f))))
  const flags = OPTIONS.flatMap((o) => spellings(o).filter((s) => s.startsWith('--'))).concat(['--help', '--version'])
  const envs = OPTIONS.map(envName)
  const names = named.map((f) => {
    // yargs reports TCPTEE_FOO_BAR from the environment as the unknown argument fooBar: name the variable instead.
    const name = `TCPTEE_${kebab(f).replaceAll('-', '_').toUpperCase()}`
    if (process.env[name] !== undefined) return withSuggestion(`environment variable ${name}`, closest(name, envs))
    const flag = (f.length === 1 ? '-' : '--') + f
    return withSuggestion(flag, f.length === 1 ? undefined : closest(flag, flags))
  })
  return `unknown flag: ${names.join(', ')}`
}

function withSuggestion (what: string, suggestion: string | undefined): string {
  return suggestion === undefined ? what : `${what} (did you mean ${suggestion}?)`
}

/**
 * yargs' failure handler for tcptee's parsers: rethrows errors and turns yargs' messages into one-line ConfigErrors
 * naming the flag (or the `TCPTEE_*` variable for an unknown one from the environment), with "did you mean".
 */
export function strictFail (msg: string, err: Error | undefined | null): never {
  if (err !== undefined && err !== null) throw err
  const unknown = /^Unknown arguments?: (.*)$/.exec(msg)
  if (unknown !== null) throw new ConfigError(unknownMessage(unknown[1]!))
  const invalid = /Argument: ([\w-]+), Given: ("[^"]*"|\S+), Choices: (.*)$/m.exec(msg)
  if (invalid !== null) throw new ConfigError(`--${invalid[1]!}: ${invalid[2]!} is not one of ${invalid[3]!.replaceAll('"', '')}`, `--${invalid[1]!}`)
  throw new ConfigError(msg.replace(/\s*\n\s*/g, ' '), undefined)
}

/** `TCPTEE_MIRROR_BUFFER` and friends: every environment variable the CLI reads. */
export function envNames (): string[] {
  return OPTIONS.map(envName)
}

function parseCount (v: string, flag: string, max: number): number {
  if (!/^\d+$/.test(v) || Number(v) > max) throw new ConfigError(`${flag}: "${v}" is not a whole number from 0 to ${max}`, flag)
  return Number(v)
}

function parseWorkers (v: string): number {
  if (v === 'auto') return availableParallelism()
  if (!/^\d+$/.test(v) || Number(v) < 1 || Number(v) > 256) throw new ConfigError(`--workers: "${v}" is not a number of workers (1-256) or auto`, '--workers')
  return Number(v)
}

/** Thrown after --help or --version was printed: exit 0, nothing else to do. */
export class HelpShown extends Error {}
