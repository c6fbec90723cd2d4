// Config file (--config): YAML and JSON with the flag names as keys; precedence flags > environment > file > defaults;
// a file that does not parse or names an unknown key is rejected with one line naming --config and the file.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { fileURLToPath } from 'node:url'
import { loadConfigFile } from '../cmd/tcptee/config-file.js'
import { normalizeConfig } from '../src/config.js'
import { parseCli } from '../cmd/tcptee/args.js'

const dir = mkdtempSync(join(tmpdir(), 'tcptee-config-'))
const file = (name: string, text: string): string => { const p = join(dir, name); writeFileSync(p, text); return p }
const KEYS = { listen: 'scalar', forward: 'scalar', mirror: 'list', percent: 'scalar', 'retry-delay': 'scalar' } as const

t.test('YAML and JSON give the same values', async (t) => {
  const y = file('a.yaml', 'listen: ":0"\nforward: 127.0.0.1:9\nmirror:\n  - 127.0.0.1:10@25%\n  - 127.0.0.1:11\npercent: 50\n')
  const j = file('a.json', JSON.stringify({ listen: ':0', forward: '127.0.0.1:9', mirror: ['127.0.0.1:10@25%', '127.0.0.1:11'], percent: 50 }))
  t.same(loadConfigFile(y, KEYS), loadConfigFile(j, KEYS))
  t.same(loadConfigFile(file('one.yaml', 'mirror: 127.0.0.1:10\n'), KEYS), { mirror: ['127.0.0.1:10'] }, 'a single mirror becomes a list')
  t.same(loadConfigFile(file('empty.yaml', ''), KEYS), {}, 'an empty file is an empty config')
})

t.test('rejected files: one message naming --config, the file and the problem', async (t) => {
  const cases: Array<[string, string, RegExp]> = [
    ['bad.yaml', 'mirror: [a\n', /--config: .*bad\.yaml:\d+:\d+ is not valid YAML: /],
    ['bad.json', '{"listen": ', /--config: .*bad\.json(:\d+:\d+)? is not valid JSON: /],
    ['unknown.yaml', 'listen: ":0"\nmirrors: [a]\n', /--config: .*unknown\.yaml: unknown key "mirrors"/],
    ['list.yaml', '- a\n- b\n', /must hold a mapping of option names to values/],
    ['nested.yaml', 'percent: { a: 1 }\n', /"percent" must be a string or a number/],
    ['mirrors.yaml', 'mirror: [{ host: a }]\n', /"mirror" must be an address or a list of addresses/],
  ]
  for (const [name, text, re] of cases) {
    t.throws(() => loadConfigFile(file(name, text), KEYS), { code: 'TCPTEE_ERR_CONFIG', flag: '--config', message: re }, name)
  }
  t.throws(() => loadConfigFile(join(dir, 'missing.yaml'), KEYS), { message: /--config: cannot read .*missing\.yaml: ENOENT/ })
})

t.test('precedence: flags > environment > file > defaults; mirror origins', async (t) => {
  const f = file('p.yaml', 'listen: ":0"\nforward: 127.0.0.1:9\nmirror: [127.0.0.1:10@25%, 127.0.0.1:11]\npercent: 50\nretry-delay: 1s\n')
  const fromFile = await parseCli(['--config', f])
  t.equal(fromFile.percent, '50', 'file over default')
  t.equal(fromFile.retryDelay, '1s', 'file over the flag default')
  t.same(fromFile.fileMirrors, ['127.0.0.1:10@25%', '127.0.0.1:11'])
  t.same(fromFile.mirrors, [])
  const cfg = normalizeConfig(fromFile)
  t.same(cfg.mirrorSpecs.map((s) => [s.origin, s.percent]), [['config', 25], ['config', undefined]])
  process.env['TCPTEE_PERCENT'] = '20'
  t.teardown(() => { delete process.env['TCPTEE_PERCENT'] })
  t.equal((await parseCli(['--config', f])).percent, '20', 'environment over file')
  const flags = await parseCli(['--config', f, '-p', '5', '-m', '127.0.0.1:12'])
  t.equal(flags.percent, '5', 'flag over environment')
  t.same(flags.mirrors, ['127.0.0.1:12'], 'a mirror list on the command line replaces the file\'s')
  t.same(flags.fileMirrors, [])
  delete process.env['TCPTEE_PERCENT']
  process.env['TCPTEE_CONFIG'] = f
  t.teardown(() => { delete process.env['TCPTEE_CONFIG'] })
  t.same((await parseCli([])).fileMirrors, ['127.0.0.1:10@25%', '127.0.0.1:11'], 'TCPTEE_CONFIG names the file')
})

t.test('the CLI rejects a bad config file with one line and exit 2', async (t) => {
  const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))
  const bad = file('cli-bad.yaml', 'listen: ":0"\nforward: :9\nbogus: 1\n')
  const child = spawn(process.execPath, [CLI, '--config', bad], { stdio: ['ignore', 'pipe', 'pipe'] })
  let stderr = ''
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number]
  t.equal(code, 2)
  t.match(stderr.split('\n')[0], /^tcptee: --config: .*cli-bad\.yaml: unknown key "bogus"$/)
  t.notMatch(stderr, /\n\s+at /, 'no stack trace')
})

// Regression: FILE_KEYS was a hand-kept copy of the flags and lacked mirror-batch, so a file with it was rejected.
t.test('every long flag is a config file key: mirror-batch: 0 is accepted', async (t) => {
  const f = file('batch.yaml', 'listen: ":0"\nforward: 127.0.0.1:9\nmirror-batch: 0\n')
  const opts = await parseCli(['--config', f])
  t.equal(String(opts.mirrorBatch), '0')
  t.equal(normalizeConfig(opts).mirrorBatch, 0, 'batching off')
  const g = file('new.yaml', 'listen: ":0"\nforward: 127.0.0.1:9\nmain-tls: verify\nproxy-protocol-in: true\nproxy-protocol-from: [10.0.0.0/8, "::1"]\n')
  t.match(normalizeConfig(await parseCli(['--config', g])), { mainTls: 'verify', proxyProtocolIn: true, proxyProtocolFrom: ['10.0.0.0/8', '::1'] })
  t.rejects(parseCli(['--config', file('badchoice.yaml', 'listen: ":0"\nforward: :9\nmain-tls: maybe\n')]), { message: '--main-tls: "maybe" is not one of off, on, verify, prefer' },
    'choices are checked for file values too')
})

// Regression: args.ts decided that mirrors came from the file by comparing JSON strings of two lists, so a command
// line that repeated the file's list was taken for the file's (origin "config", replaced on reload).
t.test('mirror origin: from the file exactly when neither the command line nor TCPTEE_MIRROR gave a list', async (t) => {
  const f = file('same.yaml', 'listen: ":0"\nforward: 127.0.0.1:9\nmirror: [127.0.0.1:10]\n')
  const cli = await parseCli(['--config', f, '-m', '127.0.0.1:10'])
  t.same(cli.mirrors, ['127.0.0.1:10'], 'the command line gave the same list as the file: it is the command line\'s')
  t.same(cli.fileMirrors, [])
  t.same(normalizeConfig(cli).mirrorSpecs.map((s) => s.origin), ['command-line'])
  process.env['TCPTEE_MIRROR'] = '127.0.0.1:10'
  t.teardown(() => { delete process.env['TCPTEE_MIRROR'] })
  const env = await parseCli(['--config', f])
  t.same([env.mirrors, env.fileMirrors], [['127.0.0.1:10'], []], 'so did the environment')
  delete process.env['TCPTEE_MIRROR']
  const fromFile = await parseCli(['--config', f])
  t.same([fromFile.mirrors, fromFile.fileMirrors], [[], ['127.0.0.1:10']], 'neither: the file\'s')
})
