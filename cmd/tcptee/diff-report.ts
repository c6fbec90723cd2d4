/**
 * `tcptee diff-report FILE [--json]`: summarises a `--diff-log` file (src/diff/report.ts does the work): divergences
 * per command and per mirror, first and last seen, one example record each. Text for people, `--json` for machines.
 */
import { ConfigError } from '../../src/ops/errors.js'
import { formatDiffReport, readDiffReport } from '../../src/diff/report.js'

export const DIFF_REPORT_USAGE = `Usage: tcptee diff-report FILE [--json]

Summarises a --diff-log file: divergence records per command (redis command, http method and path) and per mirror,
first and last seen, and one example record of each command.

  --json   print the summary as JSON
  --help   show this help
`

/** `tcptee diff-report ...` (commands.ts): the arguments after the name; prints to stdout. Throws ConfigError on bad input. */
export async function run (argv: readonly string[]): Promise<void> {
  await diffReport(argv, (text) => { process.stdout.write(text) })
}

/** Runs the subcommand with its arguments (after `diff-report`); writes to `out`. Throws ConfigError on bad input. */
export async function diffReport (args: readonly string[], out: (text: string) => void): Promise<void> {
  let json = false
  const files: string[] = []
  for (const a of args) {
    if (a === '--json') json = true
    else if (a === '--help' || a === '-h') {
      out(DIFF_REPORT_USAGE)
      return
    } else if (a.startsWith('-') && a !== '-') throw new ConfigError(`diff-report: unknown option ${a}; usage: tcptee diff-report FILE [--json]`, 'diff-report')
    else files.push(a)
  }
  if (files.length !== 1) throw new ConfigError(`diff-report: ${files.length === 0 ? 'no FILE given' : 'give one FILE'}; usage: tcptee diff-report FILE [--json]`, 'diff-report')
  const report = await readDiffReport(files[0] === '-' ? '/dev/stdin' : files[0]!)
  out(json ? JSON.stringify(report, null, 2) + '\n' : formatDiffReport(report))
}
