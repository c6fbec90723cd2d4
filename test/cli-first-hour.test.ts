// What a new user trips over in the first hour, on the built CLI (dist/cmd/tcptee.js spawned): the language does not
// follow LANG, a misspelt flag, environment variable or config key gets "did you mean", --version is tcptee's own from
// any directory, parse errors of the config file say where, and --diff-ignore-header says what it needs.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import t, { type Test } from 'tap'
import { normalizeConfig } from '../src/index.js'
import { parseCli } from '../cmd/tcptee/args.js'
import { cliMessage, parseErrorPosition } from '../cmd/tcptee/config-file.js'
import { closest, editDistance } from '../cmd/tcptee/suggest.js'
import { runCli } from './support/cli-process.js'

const OWN_VERSION = (JSON.parse(readFileSync(fileURLToPath(new URL('../package.json', import.meta.url)), 'utf8')) as { version: string }).version
const GERMAN = { LANG: 'de_DE.UTF-8', LC_ALL: 'de_DE.UTF-8', LANGUAGE: 'de' }

/** Exit 2 and exactly: the message line, then the usage hint. */
function badInput (t: Test, r: { code: number | null; stderr: string }, line: string): void {
  t.equal(r.code, 2, 'exit 2')
  t.equal(r.stderr, `tcptee: ${line}\nTry 'tcptee --help' for usage.\n`)
}

function tempDir (t: Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-first-hour-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  return dir
}

t.test('edit distance and the closest spelling', async (t) => {
  t.equal(editDistance('mirro', 'mirror'), 1)
  t.equal(editDistance('forwrad', 'forward'), 2)
  t.equal(editDistance('', 'abc'), 3)
  t.equal(editDistance('kitten', 'sitting'), 3)
  const flags = ['--listen', '--forward', '--main', '--mirror', '--mirror-buffer', '--mirror-batch', '--seed']
  t.equal(closest('--mirro', flags), '--mirror')
  t.equal(closest('--mirrors', flags), '--mirror')
  t.equal(closest('--forwrad', flags), '--forward')
  t.equal(closest('--mirror-bufer', flags), '--mirror-buffer')
  t.equal(closest('--MIRROR', flags), '--mirror', 'case-insensitive')
  t.equal(closest('--bogus', flags), undefined, 'nothing close: no suggestion')
  t.equal(closest('--verbose', flags), undefined)
  t.equal(closest('sed', ['seed', 'send']), 'seed', 'a tie goes to the first candidate')
})

t.test('under a German locale, errors and help are the same English as under C', async (t) => {
  const unknownDe = await runCli(['-l', ':0', '-f', ':1', '--mirro', ':2'], { env: GERMAN })
  badInput(t, unknownDe, 'unknown flag: --mirro (did you mean --mirror?)')
  const unknownC = await runCli(['-l', ':0', '-f', ':1', '--mirro', ':2'], { env: { LANG: 'C', LC_ALL: 'C' } })
  t.equal(unknownC.stderr, unknownDe.stderr, 'the same text under C')
  t.equal(await rejection(['-l', ':0', '-f', ':1', '--log-level', 'loud'], GERMAN),
    '--log-level: "loud" is not one of fatal, error, warn, info, debug, trace, silent', 'a bad choice, in this process under de_DE')
  const helpDe = await runCli(['--help'], { env: GERMAN })
  const helpC = await runCli(['--help'], { env: { LANG: 'C', LC_ALL: 'C' } })
  t.equal(helpDe.code, 0)
  t.equal(helpDe.stdout, helpC.stdout, '--help is identical')
  t.notMatch(helpDe.stdout, /Optionen|Standard|Beispiele|Hilfe|anzeigen|Möglichkeiten/, 'no German word of yargs')
  t.match(helpDe.stdout, /\nMirrors:\n {2}-m, --mirror <address> /)
  t.equal(helpDe.stderr, '')
})

/** What parseCli (in this process: quicker than a spawn) rejects `args` with, as the CLI prints it. */
async function rejection (args: string[], env: Record<string, string> = {}): Promise<string> {
  for (const [k, v] of Object.entries(env)) process.env[k] = v
  try {
    await parseCli(args)
    return 'accepted'
  } catch (err) {
    return cliMessage(err)
  } finally {
    for (const k of Object.keys(env)) delete process.env[k]
  }
}

t.test('did you mean: flags, environment variables and config file keys', async (t) => {
  t.equal(await rejection(['-l', ':0', '-f', ':1', '--mirro-bufer', '1MiB']), 'unknown flag: --mirro-bufer (did you mean --mirror-buffer?)',
    'the kebab-case spelling only, not also yargs\' camelCase twin')
  t.equal(await rejection(['-l', ':0', '-f', ':1', '--lissten', ':2', '--bogus']), 'unknown flag: --lissten (did you mean --listen?), --bogus')
  t.equal(await rejection(['-l', ':0', '-f', ':1', '--verison']), 'unknown flag: --verison (did you mean --version?)')
  t.equal(await rejection(['-l', ':0', '-f', ':1', '--forwrad', ':3']), 'unknown flag: --forwrad (did you mean --forward?)')
  t.equal(await rejection(['-l', ':0', '-f', ':1'], { TCPTEE_MIRRORS: ':2' }),
    'unknown flag: environment variable TCPTEE_MIRRORS (did you mean TCPTEE_MIRROR?)')
  const dir = tempDir(t)
  const file = join(dir, 'tcptee.yaml')
  writeFileSync(file, 'listen: ":0"\nforward: ":1"\nretry-dealy: 5s\n')
  t.equal(await rejection(['--config', file]), `--config: ${file}: unknown key "retry-dealy"; did you mean "retry-delay"?`)
  writeFileSync(file, 'listen: ":0"\nforward: ":1"\nbogus: 1\n')
  t.equal(await rejection(['--config', file]), `--config: ${file}: unknown key "bogus"`, 'nothing close: no suggestion')
  // And once through the built CLI, as the user sees it.
  writeFileSync(file, 'listen: ":0"\nforward: ":1"\nmirrors: [":2"]\n')
  badInput(t, await runCli(['--config', file]), `--config: ${file}: unknown key "mirrors"; did you mean "mirror"?`)
})

t.test('--version is tcptee\'s own, from a directory whose package.json says otherwise', async (t) => {
  const dir = tempDir(t)
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'some-app', version: '9.8.7' }))
  const r = await runCli(['--version'], { cwd: dir })
  t.equal(r.code, 0)
  t.equal(r.stdout, `${OWN_VERSION}\n`)
  t.equal(r.stderr, '')
})

t.test('config file parse errors keep their line and column', async (t) => {
  const dir = tempDir(t)
  const yaml = join(dir, 'bad.yaml')
  writeFileSync(yaml, 'listen: ":0"\n\tforward: ":1"\n')
  const r = await runCli(['--config', yaml])
  t.equal(r.code, 2)
  t.match(r.stderr, /^tcptee: --config: \S*bad\.yaml:2:1 is not valid YAML: /, 'a tab at the start of line 2')
  writeFileSync(yaml, 'listen: ":0"\nforward: ":1"\nmirror: [a:1, b:2\n')
  t.match(await rejection(['--config', yaml]), /bad\.yaml:\d+:\d+ is not valid YAML: Flow sequence/, 'an unclosed list')
  // JSON.parse names the place on Node 22 and later, and for some errors on Node 20.
  const json = join(dir, 'bad.json')
  writeFileSync(json, '{"listen": ":0",\n "forward" ":1"}\n')
  if (Number(process.versions.node.split('.')[0]) >= 22) t.match(await rejection(['--config', json]), /bad\.json:2:12 is not valid JSON: /)
  else t.match(await rejection(['--config', json]), /bad\.json(:\d+:\d+)? is not valid JSON: /)
  t.same(parseErrorPosition(new SyntaxError('Expected property name or \'}\' in JSON at position 21'), '{"a": 1,\n  "b": 2,\n  }'), { line: 3, col: 3 },
    'Node 20\'s "at position N" counted into line and column')
})

t.test('--diff-ignore-header says it needs --diff http', async (t) => {
  badInput(t, await runCli(['-l', ':0', '-f', ':1', '--diff-ignore-header', 'date']), '--diff-ignore-header needs --diff http')
  let message = ''
  try { normalizeConfig({ main: ':1', diff: 'bytes', diffIgnoreHeaders: 'date' }) } catch (err) { message = cliMessage(err) }
  t.equal(message, '--diff-ignore-header needs --diff http (HTTP headers), not --diff bytes')
})
