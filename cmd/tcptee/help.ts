/**
 * `tcptee --help`, generated from the option table (src/options.ts): the options in their groups, each with the kind
 * of value it takes and its default shown the same way, then how values are written, the environment and config
 * file, examples and where the documentation is. Our own text rather than yargs' so that it is the same in every
 * locale and can say what kind of value a flag takes.
 */
import { OPTION_GROUPS, OPTIONS, spellings, type OptionDef, type OptionGroup } from '../../src/options.js'

/** Where the documentation is (package.json's `homepage`). */
export const DOCS_URL = 'https://github.com/tcptee/tcptee#readme'

const NBSP = '\u00a0'
const USAGE = 'Usage: tcptee -l <address> -f <address> [-m <address>]... [options]'
const ABOUT = 'Duplicate TCP traffic: every client byte goes to main and to each mirror; only main answers the client.'

/** How each kind of value is written (the `<duration>` after a flag). */
const VALUES: ReadonlyArray<readonly [string, string]> = [
  ['address', 'host:port, :port or port: db.internal:5432, 10.0.0.5:6379, [::1]:6379, :8080; no host means 0.0.0.0 for --listen and 127.0.0.1 for main and mirrors'],
  ['duration', '500ms, 20s, 1.5s, 1m, 1m30s, 1h; a bare number is milliseconds'],
  ['size', '65536, 512KiB, 4MiB, 1GiB; k, KiB and KB all mean 1024 bytes; a bare number is bytes'],
  ['percent', '0 to 100, fractions allowed: 12.5 or 12.5%'],
  ['cidr', '10.0.0.0/8, fd00::/8, or one address'],
  ['file', 'a path; the file is read at start (and on SIGHUP where the option says so)'],
  ['pattern', 'request patterns, comma-separated: COMMAND*,INFO,CLIENT ID or \'GET /health*\'; a leading + adds them to the comparer\'s default list, none empties it'],
]

const EXAMPLES: ReadonlyArray<readonly [string, string]> = [
  ['tcptee -l :8080 -f :8081 -m :8082 -m :8083', 'goduplicator\'s flags'],
  ['tcptee -l 127.0.0.1:6380 -f redis-main:6379 -m redis-next:6379,redis-canary:6379', 'shadow a Redis onto two new servers'],
  ['tcptee -l :8080 -f api-old:80 -m api-new:80 --diff http --admin 127.0.0.1:9900', 'compare replies; metrics on /metrics'],
]

/** `-f, --forward, --main <address>`: every spelling and the kind of value. */
export function optionLabel (o: OptionDef): string {
  const names = spellings(o)
  // Long-only options line up with the long flags of those that have a short one (as getopt-style help does).
  const label = /^-[^-]/.test(names[0]!) ? names.join(', ') : `    ${names.join(', ')}`
  if (o.type === 'boolean') return label
  if (o.type === 'choices') return `${label} <${o.choices.join('|')}>`
  return `${label} <${o.value}>`
}

/** `[default: 500ms]`, `[default: off]`, `[required]`: one form for every option. */
export function defaultLabel (o: OptionDef): string {
  const shown = o.default ?? o.absent
  return shown === 'required' ? '[required]' : `[default: ${shown}]`
}

/** Words of `text` in lines of at most `width` characters (a longer word gets a line of its own). */
function wrap (text: string, width: number): string[] {
  const lines: string[] = []
  let line = ''
  for (const word of text.split(/[ \t\n]+/).filter((w) => w !== '')) {
    if (line !== '' && line.length + 1 + word.length > width) {
      lines.push(line)
      line = word
    } else {
      line = line === '' ? word : `${line} ${word}`
    }
  }
  if (line !== '') lines.push(line)
  return lines
}

/** Two columns: `left` padded to `leftWidth`, `right` wrapped beside it (or below it when `left` is wider). */
function twoColumns (left: string, right: string, leftWidth: number, width: number): string[] {
  const indent = ' '.repeat(2 + leftWidth + 2)
  const body = wrap(right, Math.max(20, width - indent.length))
  if (left.length > leftWidth) return [`  ${left}`, ...body.map((l) => indent + l)]
  return body.map((l, i) => (i === 0 ? `  ${left.padEnd(leftWidth)}  ` : indent) + l)
}

/**
 * The whole help text for a terminal `columns` wide (clamped to 60-110), ending in a newline. `commands`: the
 * subcommands (`tcptee status`, ...) as name and one line.
 */
export function helpText (columns = 100, commands: ReadonlyArray<readonly [string, string]> = []): string {
  const width = Math.max(60, Math.min(110, columns))
  const leftWidth = 34
  const out: string[] = [USAGE, '', ...wrap(ABOUT, width)]
  if (commands.length > 0) {
    out.push('', 'Commands:')
    for (const [name, describe] of commands) out.push(...twoColumns(`tcptee ${name}`, describe, leftWidth, width))
  }
  for (const [group, title] of Object.entries(OPTION_GROUPS) as Array<[OptionGroup, string]>) {
    const rows = OPTIONS.filter((o) => o.group === group)
    if (rows.length === 0) continue
    out.push('', `${title}:`)
    // The default label is never split across lines (a no-break space until the lines are made).
    for (const o of rows) out.push(...twoColumns(optionLabel(o), `${o.help} ${defaultLabel(o).replaceAll(' ', NBSP)}`, leftWidth, width).map((l) => l.replaceAll(NBSP, ' ')))
  }
  out.push('', 'Other:')
  out.push(...twoColumns('-h, --help', 'show this help', leftWidth, width))
  out.push(...twoColumns('    --version', 'show tcptee\'s version', leftWidth, width))
  out.push('', 'Values:')
  for (const [kind, how] of VALUES) out.push(...twoColumns(`<${kind}>`, how, 10, width))
  out.push('', ...wrap('Every option can also be set in the environment (--mirror-buffer is TCPTEE_MIRROR_BUFFER) or as a key of the ' +
    '--config file (mirror-buffer: 8MiB). Flags win over the environment, the environment over the file.', width))
  out.push('', 'Examples:')
  for (const [cmd, what] of EXAMPLES) out.push(`  ${cmd}`, `      ${what}`)
  out.push('', ...wrap(`Documentation: ${DOCS_URL} (logs, metrics, reload and exit codes: docs/operating.md)`, width))
  return out.join('\n') + '\n'
}
