// `--mirror-credentials FILE` (shared by --protocol postgres, mysql and redis): the lookup (exact mirror, "*" mirror,
// "*" user, env:NAME), errors that name the flag and the file and never a password, the 0600 warning, re-reading on
// reload, and `--mirror-credentials` without a protocol that logs in refused with one line.
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import path from 'node:path'
import t, { type Test } from 'tap'
import { createDuplicator, ConfigError } from '../src/index.js'
import { credentialsFrom, loadCredentials } from '../src/mirrors/credentials.js'
import { captureLogger } from './helpers.js'
type T = Test

function tempDir (t: T): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tcptee-creds-'))
  t.teardown(() => rmSync(dir, { recursive: true, force: true }))
  return dir
}

t.test('lookup: exact mirror, then "*" mirror; exact user, then "*" user; tls:// and @ suffixes name the same mirror', async (t) => {
  const c = credentialsFrom({
    'pg-new:5432': { app: 's3cret', reporting: 'env:REPORTING_PW' },
    'tls://other:5432@25%': { '*': 'other-any' },
    '*': { '*': 'everywhere', app: 'app-elsewhere' },
  }, 'creds.yaml', { REPORTING_PW: 'from-env' })
  t.equal(c.password('pg-new:5432', 'app'), 's3cret')
  t.equal(c.password('pg-new:5432', 'reporting'), 'from-env')
  t.equal(c.password('pg-new:5432', 'nobody'), undefined, 'a mirror with its own entry does not fall back to "*" mirror')
  t.equal(c.password('other:5432', 'anyone'), 'other-any')
  t.equal(c.password('tls://other:5432', 'anyone'), 'other-any')
  t.equal(c.password('third:1', 'app'), 'app-elsewhere')
  t.equal(c.password('third:1', 'x'), 'everywhere')
  t.same(c.mirrors, ['pg-new:5432', 'other:5432'])
  const none = credentialsFrom({ 'a:1': { u: 'p' } }, 'f')
  t.equal(none.password('b:1', 'u'), undefined, 'no "*" mirror: nothing for other mirrors')
})

t.test('bad files: one message naming the flag and the file, never a password', async (t) => {
  const dir = tempDir(t)
  const cases: Array<[string, string, RegExp]> = [
    ['list.yaml', '- a\n- b\n', /--mirror-credentials: .*list\.yaml must hold a mapping of mirrors/],
    ['flat.yaml', '"pg:5432": hunter2\n', /"pg:5432" must hold a mapping of user names to passwords/],
    ['nested.yaml', '"pg:5432":\n  app:\n    deep: hunter2\n', /the password of "app" at "pg:5432" must be a string/],
    ['env.yaml', '"pg:5432":\n  app: env:TCPTEE_TEST_SURELY_UNSET\n', /names the environment variable TCPTEE_TEST_SURELY_UNSET, which is not set/],
    ['broken.yaml', '"pg:5432":\n  app: hunter2\n bad: [\n', /broken\.yaml is not valid YAML/],
    ['broken.json', '{"pg:5432": {"app": "hunter2"', /broken\.json is not valid JSON/],
  ]
  for (const [name, text, re] of cases) {
    const file = path.join(dir, name)
    writeFileSync(file, text, { mode: 0o600 })
    const err = t.throws(() => loadCredentials(file)) as ConfigError
    t.ok(err instanceof ConfigError, name)
    t.equal(err.code, 'TCPTEE_ERR_CONFIG', name)
    t.match(err.message, re, name)
    t.notMatch(err.message, /hunter2/, `${name}: no password in the message`)
    t.equal(err.message.split('\n').length, 1, `${name}: one line`)
  }
  const missing = t.throws(() => loadCredentials(path.join(dir, 'nope.yaml'))) as ConfigError
  t.match(missing.message, /--mirror-credentials: cannot read .*nope\.yaml: ENOENT/)
})

t.test('the duplicator reads the file, warns when others can read it, and reads it again on reload', async (t) => {
  const dir = tempDir(t)
  const file = path.join(dir, 'mirrors.yaml')
  writeFileSync(file, '"127.0.0.1:1":\n  app: first\n')
  chmodSync(file, 0o644)
  const { logger, lines } = captureLogger()
  const opts = { listen: '127.0.0.1:0', main: '127.0.0.1:1', mirrors: ['127.0.0.1:2'], protocol: 'postgres', mirrorCredentials: file, logger }
  const dup = createDuplicator(opts)
  t.teardown(() => dup.close(0))
  const warn = lines.filter((l) => l['msg'] === 'the mirror credentials file can be read by other users: chmod 600 it')
  t.equal(warn.length, 1, 'one warning for a 0644 file')
  t.notMatch(JSON.stringify(lines), /first/, 'no password in any log line')
  chmodSync(file, 0o600)
  writeFileSync(file, '"127.0.0.1:1": [not, a, mapping]\n')
  t.throws(() => dup.reconfigure(opts), /"127\.0\.0\.1:1" must hold a mapping/, 'a bad file on reload is refused, naming it')
  writeFileSync(file, '"127.0.0.1:1":\n  app: second\n')
  const { restartNeeded } = dup.reconfigure(opts)
  t.same(restartNeeded, [], 'a changed credentials file needs no restart')
  t.equal(lines.filter((l) => l['msg'] === 'the mirror credentials file can be read by other users: chmod 600 it').length, 1, 'no warning for 0600')
})

t.test('mirrorCredentials without a protocol that logs in is refused, naming both options', async (t) => {
  const err = t.throws(() => createDuplicator({ listen: '127.0.0.1:0', main: '127.0.0.1:1', mirrorCredentials: '/x.yaml' })) as ConfigError
  t.match(err.message, /mirrorCredentials needs protocol postgres, mysql or redis/)
  t.match(err.messageFor((k) => k === 'protocol' ? '--protocol' : '--mirror-credentials'), /^--mirror-credentials needs --protocol postgres/)
  t.throws(() => createDuplicator({ listen: '127.0.0.1:0', main: '127.0.0.1:1', protocol: 'smtp' }), /protocol: "smtp" is not one of tcp, postgres, mysql, redis, http/)
})
