/**
 * tcptee's own version, read from tcptee's own package.json: the first one above this file whose name is `tcptee`
 * (`dist/src/ops/` in the package, `src/ops/` when run from source). Never the package.json nearest to the current
 * directory, which belongs to whatever project tcptee was installed into.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

function ownVersion (): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (;;) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { name?: unknown; version?: unknown }
      if (pkg.name === 'tcptee' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // No package.json here (or not JSON): keep walking up.
    }
    const up = dirname(dir)
    if (up === dir) return 'unknown'
    dir = up
  }
}

/** tcptee's version (`0.1.0`), as in its package.json. */
export const VERSION: string = ownVersion()
