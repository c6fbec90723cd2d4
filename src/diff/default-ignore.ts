// A leaf module: option parsing (normalizeDiff) reads the defaults without loading the comparers, which are loaded only
// with --diff (src/features.ts).
import type { DiffKind } from './outcome.js'
import { HTTP_DEFAULT_IGNORE } from '../protocols/http/default-ignore.js'
import { REDIS_DEFAULT_IGNORE } from '../protocols/redis/default-ignore.js'

/**
 * Each comparer's default `--diff-ignore` list (request patterns compared for framing only); undefined: the comparer
 * has no requests to ignore (`bytes`). A SQL comparer adds its statements here.
 */
export const DEFAULT_IGNORE: Record<DiffKind, readonly string[] | undefined> = {
  bytes: undefined,
  redis: REDIS_DEFAULT_IGNORE,
  http: HTTP_DEFAULT_IGNORE,
  // Statements are keyed by their first two words (SELECT ..., INSERT INTO): `--diff-ignore 'SELECT now*'` matches those.
  postgres: [],
  // The same for MySQL: statements keyed with their literals replaced.
  mysql: [],
}
