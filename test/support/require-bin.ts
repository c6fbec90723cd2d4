import fs from 'node:fs'
import path from 'node:path'

/** What a test file needs from tap to report a missing binary. */
export interface BinGate {
  fail (message: string): unknown
  plan (n: number, comment?: string): void
}

/** Directories searched after PATH: Debian keeps mariadbd in /usr/sbin and PostgreSQL in /usr/lib/postgresql/<ver>/bin. */
function extraDirs (): string[] {
  const dirs = ['/usr/sbin', '/usr/local/sbin', '/sbin']
  try {
    const versions = fs.readdirSync('/usr/lib/postgresql')
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a))
    for (const v of versions) dirs.push(`/usr/lib/postgresql/${v}/bin`)
  } catch {
    // no PostgreSQL server package installed
  }
  return dirs
}

function isExecutable (file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK)
    return fs.statSync(file).isFile()
  } catch {
    return false
  }
}

/** Absolute path of an executable, looked up in `dirs` first, then PATH, then the Debian extra dirs. */
export function findBin (name: string, dirs: readonly string[] = []): string | undefined {
  const pathDirs = (process.env['PATH'] ?? '').split(path.delimiter).filter(Boolean)
  for (const dir of [...dirs, ...pathDirs, ...extraDirs()]) {
    const file = path.join(dir, name)
    if (isExecutable(file)) return file
  }
  return undefined
}

/**
 * Resolves every binary a test file needs. When one is missing, it reports that once:
 * with `CI=true` as a failure (CI must never skip silently), elsewhere as a skip whose message says
 * what to install. Returns undefined in that case, and the test file must not run its tests.
 */
export function requireBins<const N extends string> (
  t: BinGate, names: readonly N[], install: string, dirs: readonly string[] = []
): Record<N, string> | undefined {
  const found: Partial<Record<N, string>> = {}
  const missing: string[] = []
  for (const name of names) {
    const file = findBin(name, dirs)
    if (file === undefined) missing.push(name)
    else found[name] = file
  }
  if (missing.length === 0) return found as Record<N, string>
  const message = `missing ${missing.join(', ')}: install with ${install} (or run .ci/install-deps.sh)`
  if (process.env['CI'] === 'true') t.fail(message)
  else t.plan(0, message)  // tap reports the whole file as skipped, with this reason
  return undefined
}

/** PostgreSQL's bin dir holding `initdb`: Debian keeps the server binaries off PATH. */
export function postgresBinDir (): string | undefined {
  const initdb = findBin('initdb')
  if (initdb === undefined) return undefined
  return path.dirname(fs.realpathSync(initdb))
}
