// A leaf module: option parsing (--diff-ignore's defaults) reads it without loading the comparer.

/**
 * Commands whose replies differ between two correct servers with the same data: the default `--diff-ignore` of
 * `--diff redis`. COMMAND (redis-cli sends COMMAND DOCS on connect; map order differs per process), INFO and the
 * CLIENT/HELLO/ROLE family (ids, uptimes, addresses), TIME and LASTSAVE, random picks, and the server's own
 * bookkeeping (MEMORY, OBJECT FREQ/IDLETIME, SLOWLOG, LATENCY, DEBUG).
 */
export const REDIS_DEFAULT_IGNORE: readonly string[] = Object.freeze([
  'COMMAND*', 'INFO', 'TIME', 'LASTSAVE', 'CLIENT ID', 'CLIENT INFO', 'CLIENT LIST', 'HELLO', 'ROLE',
  'RANDOMKEY', 'SRANDMEMBER', 'SPOP', 'HRANDFIELD', 'ZRANDMEMBER',
  'MEMORY*', 'OBJECT FREQ', 'OBJECT IDLETIME', 'SLOWLOG*', 'LATENCY*', 'DEBUG*',
])
