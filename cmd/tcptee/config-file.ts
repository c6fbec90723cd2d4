import { readFileSync } from 'node:fs'
import { extname } from 'node:path'
import type { Logger } from 'pino'
import { parse as parseYaml } from 'yaml'
import type { DuplicatorOptions } from '../../src/config.js'
import { ConfigError } from '../../src/ops/errors.js'

const FLAG = '--config'

/**
 * Reads a config file (`.yaml`/`.yml` or `.json`) whose keys are the long flag names (`listen`, `forward`,
 * `mirror`, `retry-delay`, `percent`, ...). Values are strings or numbers; `mirror` may be a list. Throws
 * {@link ConfigError} naming the file and what is wrong: unreadable, not parseable, not a mapping, an unknown key,
 * or a value of the wrong type. Validation of the values themselves is left to normalizeConfig.
 * @param allowedKeys the keys the caller understands (the CLI's long option names).
 */
export function loadConfigFile (file: string, allowedKeys: readonly string[]): Record<string, unknown> {
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
    throw new ConfigError(`${FLAG}: ${file} is not valid ${ext === '.json' ? 'JSON' : 'YAML'}: ${why}`, FLAG, { cause: err })
  }
  if (data === null || data === undefined) return {}
  if (typeof data !== 'object' || Array.isArray(data)) throw new ConfigError(`${FLAG}: ${file} must hold a mapping of option names to values`, FLAG)
  const out: Record<string, unknown> = {}
  for (const [key, value] of Object.entries(data as Record<string, unknown>)) {
    if (!allowedKeys.includes(key)) throw new ConfigError(`${FLAG}: ${file}: unknown key "${key}"`, FLAG)
    if (key === 'config') throw new ConfigError(`${FLAG}: ${file}: a config file cannot name another config file`, FLAG)
    const scalar = (v: unknown): boolean => typeof v === 'string' || typeof v === 'number'
    if (key === 'mirror') {
      const list = Array.isArray(value) ? value : [value]
      if (!list.every(scalar)) throw new ConfigError(`${FLAG}: ${file}: "mirror" must be an address or a list of addresses`, FLAG)
      out[key] = list.map(String)
    } else {
      if (!scalar(value)) throw new ConfigError(`${FLAG}: ${file}: "${key}" must be a string or a number`, FLAG)
      out[key] = value
    }
  }
  return out
}

/**
 * SIGHUP: re-reads the configuration with `load` (which re-parses the command line, environment and file with their
 * usual precedence) and applies the mirror set and sampling to `target`. A configuration that does not load or
 * validate is rejected with one log line and the running configuration stays. Never throws.
 */
export async function reloadConfig (
  target: { reconfigure (opts: DuplicatorOptions): { restartNeeded: string[] } | Promise<{ restartNeeded: string[] }> },
  load: () => Promise<DuplicatorOptions>,
  log: Logger,
): Promise<boolean> {
  try {
    const opts = await load()
    const { restartNeeded } = await target.reconfigure(opts)
    log.info({ restartNeeded }, restartNeeded.length === 0
      ? 'configuration reloaded: mirror set and sampling applied'
      : 'configuration reloaded: mirror set and sampling applied; other changed options need a restart')
    return true
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err)
    log.error({ err: message }, `configuration reload rejected, running configuration unchanged: ${message}`)
    return false
  }
}
