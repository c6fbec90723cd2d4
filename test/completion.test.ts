// `tcptee completion` sourced by a real bash: the script yargs generates must call back into tcptee and complete the
// subcommands, the option table's flags and their choices.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI } from './support/cli-process.js'

t.test('tcptee completion: the script completes subcommands, flags and choices in a real bash', async (t) => {
  const bin = mkdtempSync(join(tmpdir(), 'tcptee-bin-'))
  writeFileSync(join(bin, 'tcptee'), `#!/bin/sh\nexec "${process.execPath}" "${CLI}" "$@"\n`)
  chmodSync(join(bin, 'tcptee'), 0o755)
  // One bash sources the script once and completes three command lines; each answer ends with a '--' line.
  const lines = [['tcptee', 'st'], ['tcptee', '--mirror-b'], ['tcptee', '--log-format', '']]
  const script = 'source <(tcptee completion)\n' + lines.map((words) =>
    `COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}); COMP_CWORD=${words.length - 1}; _tcptee_yargs_completions; printf '%s\\n' "\${COMPREPLY[@]}" --`).join('\n')
  const child = spawn('bash', ['-c', script], { env: { ...process.env, PATH: `${bin}:${process.env['PATH'] ?? ''}` }, stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => { out += d.toString() })
  await once(child, 'exit')
  const answers = out.split('--\n').map((a) => a.split('\n').filter((l) => l !== '').sort())
  t.same(answers[0], ['status'], 'subcommand')
  t.same(answers[1], ['--mirror-batch', '--mirror-buffer'], 'flags from the option table')
  t.same(answers[2], ['json', 'pretty'], 'choices')
})
