/**
 * `tcptee completion`: prints yargs' bash/zsh completion script. The script calls `tcptee --get-yargs-completions
 * ...` on every Tab, which main.ts routes here too; completions are the subcommands and every flag of the option table.
 */
import yargs from 'yargs'
import { OPTIONS } from '../../src/options.js'
import { SUBCOMMANDS } from './commands.js'
import { yargsOption } from './args.js'

function parser (argv: readonly string[]) {
  let y = yargs([...argv]).scriptName('tcptee')
  // Short aliases are left out: yargs would offer `-l` as `--l`.
  for (const o of OPTIONS) y = y.option(o.flag, { ...yargsOption(o), alias: o.aliases.filter((a) => a.length > 1) })
  for (const [name, c] of Object.entries(SUBCOMMANDS)) if (name !== 'completion') y = y.command(name, c.describe)
  return y.completion('completion', SUBCOMMANDS['completion']!.describe).help(false).version(false).exitProcess(false)
}

/** `tcptee completion [...]`: the script on stdout. */
export async function run (argv: readonly string[]): Promise<void> {
  await parser(['completion', ...argv]).parse()
}

/** `tcptee --get-yargs-completions tcptee <words...>` (from the script): one completion per line on stdout. */
export async function complete (argv: readonly string[]): Promise<void> {
  await parser(argv).parse()
}
