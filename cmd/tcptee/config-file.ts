import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import type { Logger } from 'pino'
import { parseYaml } from '../../src/ops/yaml.js'
import type { DuplicatorOptions } from '../../src/config.js'
import { ConfigError } from '../../src/ops/errors.js'
import { FileWatcher } from '../../src/ops/file-watcher.js'
import { flagName, restartOptions } from '../../src/options.js'
import { closest } from './suggest.js'

const FLAG = '--config'

/** The keys a config file may hold and how each value is read: one string or number, a list of them, or true/false. */
export type FileSchema = Readonly<Record<string, 'scalar' | 'list' | 'boolean'>>

/**
 * Reads a config file (`.yaml`/`.yml` or `.json`) whose keys are the long flag names (`listen`, `forward`,
 * `mirror`, `retry-delay`, `percent`, ...). Values are strings or numbers; list keys (`mirror`) may also hold a list,
 * switches hold true or false. Throws {@link ConfigError} naming the file and what is wrong: unreadable, not
 * parseable, not a mapping, an unknown key, or a value of the wrong type. Validation of the values themselves is left
 * to normalizeConfig.
 * @param schema the keys the caller understands (the CLI's long option names, from the option table).
 */
export function loadConfigFile (file: string, schema: FileSchema): Record<string, unknown> {
  let text: string
  try {
    text = readFileSync(file, 'utf8')
  } catch (err) {
    throw new ConfigError(`${FLAG}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, FLAG, { cause: err })
  }
  const ext = extname(file).toLowerCase()
  let data: unknown
  try {
    data = ext === '.json' ? JSON.parse(text) : parseYaml(text, { prettyErrors: false })
  } catch (err) {
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]
    const at = parseErrorPosition(err, text)
    throw new ConfigError(`${FLAG}: ${file}${at === undefined ? '' : `:${at.line}:${at.col}`} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${why}`, FLAG, { cause: err })
  }
  if (data === null || data === undefined) return {}
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`${FLAG}: ${file} must hold a mapping of option names to values`, FLAG)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    const kind = Object.hasOwn(schema, key) ? schema[key] : undefined
    if (kind === undefined) {
      const near = closest(key, Object.keys(schema).filter((k) => k !== 'config'))
      throw new ConfigError(`${FLAG}: ${file}: unknown key "${key}"${near === undefined ? '' : `; did you mean "${near}"?`}`, FLAG)
    }
    if (key === 'config') throw new ConfigError(`${FLAG}: ${file}: a config file cannot name another config file`, FLAG)
    const scalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number'
    if (kind === 'list') {
      const list = Array.isArray(value) ? value : [value]
      if (!list.every(scalar)) {
        throw new ConfigError(`${FLAG}: ${file}: "${key}" must be ${key === 'mirror' ? 'an address or a list of addresses' : 'a string or a list of strings'}`, FLAG)
      }
      out[key] = list.map(String)
    } else if (kind === 'boolean') {
      if (typeof value !== 'boolean') throw new ConfigError(`${FLAG}: ${file}: "${key}" must be true or false`, FLAG)
      out[key] = value
    } else {
      if (!scalar(value)) throw new ConfigError(`${FLAG}: ${file}: "${key}" must be a string or a number`, FLAG)
      out[key] = value
    }
  }
  return out
}

/**
 * Where in `text` a YAML or JSON parse error is, 1-based: yaml's errors carry the offset (`pos`); JSON.parse says
 * `(line L column C)` (Node 22 and later) or, for some errors only, `at position N` (Node 20).
 */
export function parseErrorPosition (err: unknown, text: string): { line: number; col: number } | undefined {
  let offset: number
  // yaml's YAMLParseError (the package is loaded lazily, so matched by shape): `pos` is [start, end] in `text`.
  const pos = (err as { pos?: unknown } | undefined)?.pos
  if (err instanceof Error && err.name.startsWith('YAML') && Array.isArray(pos) && typeof pos[0] === 'number') {
    offset = pos[0]
  } else {
    const message = err instanceof Error ? err.message : ''
    const lineCol = /\(line (\d+) column (\d+)\)/.exec(message)
    if (lineCol !== null) return { line: Number(lineCol[1]), col: Number(lineCol[2]) }
    const position = /at position (\d+)/.exec(message)
    if (position === null) return undefined
    offset = Number(position[1])
  }
  const before = text.slice(0, offset)
  const line = before.split('\n').length
  return { line, col: before.length - before.lastIndexOf('\n') }
}

/** What a reload needs of the running program: the duplicator, or the cluster primary's ClusterAdmin. */
export interface ReloadTarget {
  /** Applies what can be applied; returns the option keys (library scope) that changed and need a restart. */
  reconfigure (opts: DuplicatorOptions): { restartNeeded: string[] } | Promise<{ restartNeeded: string[] }>
}

/** The message of a load or validation error as the CLI prints it: options named by their flags. */
export function cliMessage (err: unknown): string {
  if (err instanceof ConfigError) return err.messageFor(flagName)
  return err instanceof Error ? err.message : String(err)
}

/** What started a reload: the signal, or the `--config` file's watcher (a ConfigMap update sends no signal). */
export type ReloadTrigger = 'SIGHUP' | 'config file changed'

/**
 * Watches the `--config` file and reloads like SIGHUP when its content changes (see src/ops/file-watcher.ts).
 * Returns the watcher; its owner closes it.
 */
export function watchConfigFile (file: string, reload: () => Promise<unknown>, log: Logger): FileWatcher {
  return new FileWatcher(file, () => { void reload() }, { logger: log })
}

/**
 * SIGHUP or a change of the `--config` file: re-reads the configuration with `load` (which re-parses the command line, environment and file with their
 * usual precedence) and applies the mirror set and sampling to `target`. Options whose reload rule is `restart` and
 * that differ from `running` (the options the process started with) are logged under `restartNeeded` by flag name.
 * A configuration that does not load or validate is rejected with one log line and the running configuration stays.
 * Never throws.
 */
export async function reloadConfig<T extends DuplicatorOptions> (target: ReloadTarget, load: () => Promise<T>, log: Logger, running: T, trigger: ReloadTrigger = 'SIGHUP'): Promise<boolean> {
  try {
    const opts = await load()
    const { restartNeeded: keys } = await target.reconfigure(opts)
    // CLI-only options (workers, admin, logging) are not the duplicator's: compared here.
    const before = running as unknown as Record<string, unknown>
    const after = opts as unknown as Record<string, unknown>
    for (const o of restartOptions('cli')) if (JSON.stringify(before[o.key]) !== JSON.stringify(after[o.key])) keys.push(o.key)
    const restartNeeded = [...new Set(keys)].map(flagName)
    log.info({ trigger, restartNeeded }, restartNeeded.length === 0
      ? 'configuration reloaded: mirror set and sampling applied'
      : 'configuration reloaded: mirror set and sampling applied; other changed options need a restart')
    return true
  } catch (err) {
    const message = cliMessage(err)
    log.error({ trigger, err: message }, `configuration reload rejected, running configuration unchanged: ${message}`)
    return false
  }
}
