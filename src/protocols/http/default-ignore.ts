// A leaf module: option parsing (--diff-ignore's defaults) reads it without loading the comparer.

/** `--diff http` ignores no request by default; `--diff-ignore 'GET /health*'` adds some (headers: `--diff-ignore-header`). */
export const HTTP_DEFAULT_IGNORE: readonly string[] = Object.freeze([])
