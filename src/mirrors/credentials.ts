import { readFileSync, statSync } from 'node:fs'
import { extname } from 'node:path'
import { parseYaml } from '../ops/yaml.js'
import { ConfigError } from '../ops/errors.js'

/**
 * The passwords tcptee logs in to mirrors with (`--mirror-credentials FILE`), for the protocols whose mirrors need
 * their own login (`--protocol postgres|mysql|redis`). Owns the file's format and the lookup; never logs a password.
 *
 * The file (YAML or JSON) maps each mirror, written as in `-m` without `tls://` and `@` suffixes (`pg-new:5432`), to
 * a mapping of user name to password. `"*"` as a mirror is any mirror without an entry of its own; `"*"` as a user
 * is any user without an entry of their own. A password `env:NAME` is read from the environment variable NAME when
 * the file is loaded (a missing variable is an error).
 * ```yaml
 * "pg-new:5432":
 *   app: s3cret
 *   reporting: env:PG_NEW_REPORTING_PASSWORD
 * "*":
 *   "*": same-everywhere
 * ```
 */
export interface MirrorCredentials {
  /** The password to log in to `mirror` (its name, `host:port` as in `-m`) as `user`; undefined when none is known. */
  password (mirror: string, user: string): string | undefined
  /** Mirrors with an entry of their own (not `"*"`): to warn about entries that name no configured mirror. */
  readonly mirrors: readonly string[]
}

const FLAG = '--mirror-credentials'
const KEY = 'mirrorCredentials'

function fail (message: string, cause?: unknown): never {
  throw new ConfigError(message, FLAG, { key: KEY, ...(cause === undefined ? {} : { cause }), render: (n) => message.replace(FLAG, n(KEY)) })
}

/**
 * Builds the lookup from the file's data (already parsed). `where` names the source in errors (the file).
 * Throws {@link ConfigError}: not a mapping, a user mapping that is not one, a password that is not a string, an
 * `env:` variable that is not set. Error messages never include a password.
 */
export function credentialsFrom (data: unknown, where: string, env: NodeJS.ProcessEnv = process.env): MirrorCredentials {
  if (data === null || data === undefined) data = {}
  if (typeof data !== 'object' || Array.isArray(data)) fail(`${FLAG}: ${where} must hold a mapping of mirrors to users and passwords`)
  const table = new Map<string, Map<string, string>>()
  for (const [mirror, users] of Object.entries(data as Record<string, unknown>)) {
    if (users === null || typeof users !== 'object' || Array.isArray(users)) {
      fail(`${FLAG}: ${where}: "${mirror}" must hold a mapping of user names to passwords`)
    }
    const byUser = new Map<string, string>()
    for (const [user, value] of Object.entries(users as Record<string, unknown>)) {
      if (typeof value !== 'string' && typeof value !== 'number') fail(`${FLAG}: ${where}: the password of "${user}" at "${mirror}" must be a string`)
      const text = String(value)
      if (text.startsWith('env:')) {
        const name = text.slice(4)
        const got = env[name]
        if (got === undefined) fail(`${FLAG}: ${where}: the password of "${user}" at "${mirror}" names the environment variable ${name}, which is not set`)
        byUser.set(user, got)
      } else {
        byUser.set(user, text)
      }
    }
    table.set(mirrorKey(mirror), byUser)
  }
  const mirrors = Object.freeze([...table.keys()].filter((m) => m !== '*'))
  return Object.freeze({
    mirrors,
    password (mirror: string, user: string): string | undefined {
      const forMirror = table.get(mirrorKey(mirror)) ?? table.get('*')
      if (forMirror === undefined) return undefined
      return forMirror.get(user) ?? forMirror.get('*')
    },
  })
}

/** `tls://pg-new:5432@25%` and `pg-new:5432` name the same mirror. */
function mirrorKey (text: string): string {
  if (text === '*') return text
  let s = text.trim()
  if (s.toLowerCase().startsWith('tls://')) s = s.slice(6)
  const at = s.indexOf('@')
  return at === -1 ? s : s.slice(0, at)
}

/** What loading the file found besides the passwords. */
export interface LoadedCredentials {
  readonly credentials: MirrorCredentials
  /** The file can be read by its group or others: the caller warns (the passwords are in it). */
  readonly readableByOthers: boolean
}

/**
 * Reads `--mirror-credentials FILE` (`.json` as JSON, anything else as YAML). Throws {@link ConfigError} naming the
 * flag and the file: unreadable, not parseable (with YAML's line and column), or wrong in shape.
 */
export function loadCredentials (file: string, env: NodeJS.ProcessEnv = process.env): LoadedCredentials {
  let text: string
  let mode = 0
  try {
    text = readFileSync(file, 'utf8')
    mode = statSync(file).mode
  } catch (err) {
    fail(`${FLAG}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`, err)
  }
  let data: unknown
  const json = extname(file).toLowerCase() === '.json'
  try {
    data = json ? JSON.parse(text) : parseYaml(text, { prettyErrors: true })
  } catch (err) {
    // Only the first line: YAML's pretty errors quote the offending line, which may hold a password.
    const why = (err instanceof Error ? err.message : String(err)).split('\n')[0]
    fail(`${FLAG}: ${file} is not valid ${json ? 'JSON' : 'YAML'}: ${why}`, undefined)
  }
  return Object.freeze({ credentials: credentialsFrom(data, file, env), readableByOthers: (mode & 0o077) !== 0 })
}
