/**
 * The subcommands of `tcptee`: `tcptee <name> ...` runs the command's own file; anything else is the duplicator
 * (args.ts). Adding a command is one entry here and one small file in cmd/tcptee/ that exports `run`.
 */

/** A subcommand's module: `run` gets the arguments after its name; it throws ConfigError on bad input. */
export interface SubcommandModule {
  run (argv: readonly string[]): Promise<void>
}

export interface Subcommand {
  /** One line for `tcptee --help` and shell completion. */
  readonly describe: string
  readonly load: () => Promise<SubcommandModule>
}

export const SUBCOMMANDS: Readonly<Record<string, Subcommand>> = Object.freeze({
  status: { describe: 'print the status of a running tcptee from its admin endpoint (--watch to refresh)', load: () => import('./status.js') },
  wrap: { describe: 'run an app on $PORT behind tcptee: tcptee wrap -m MIRROR -- CMD ARGS...', load: () => import('./wrap.js') },
  'diff-report': { describe: 'summarise a --diff-log file: divergences per command and per mirror (--json for machines)', load: () => import('./diff-report.js') },
  replay: { describe: 'replay recorded connections (pcap/pcapng) against a server: tcptee replay FILE --to HOST:PORT', load: () => import('./replay.js') },
  completion: { describe: 'print a bash/zsh completion script: tcptee completion >> ~/.bashrc', load: () => import('./completion.js') },
})

/** The subcommand `argv` starts with, if any. */
export function subcommandOf (argv: readonly string[]): { name: string; command: Subcommand } | undefined {
  const name = argv[0]
  if (name === undefined || !Object.hasOwn(SUBCOMMANDS, name)) return undefined
  return { name, command: SUBCOMMANDS[name]! }
}
