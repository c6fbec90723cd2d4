// The package as a user gets it: `npm pack` of a copy of the sources (its prepack builds dist/ there, so this
// checkout's dist/ is never rebuilt under the other tests' feet), installed into another project whose own
// package.json says 1.0.0, then `tcptee --version` run from yet another folder must print tcptee's version. The
// tarball ships what a user runs and no source maps pointing at sources it does not ship, and has no `prepare` script.
import { execFile } from 'node:child_process'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { promisify } from 'node:util'
import t from 'tap'

// npm pack compiles the sources (tsc) and npm install unpacks: about 15 s on an idle 2-core machine, more than
// tap's 120 s per file when the machine is busy. This file's own limit tells the runner so.
t.setTimeout(300_000)

const exec = promisify(execFile)
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const PKG = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
  version: string; scripts: Record<string, string>; repository?: unknown; homepage?: string; bugs?: unknown; files: string[]
}

t.test('package.json: metadata, and no prepare script to warn every consumer', async (t) => {
  t.notOk('prepare' in PKG.scripts, 'no prepare script')
  t.match(PKG.scripts['prepack'], /tsc/, 'prepack builds')
  t.match(PKG.repository, { type: 'git', url: /^git\+https:\/\/github\.com\/.+\.git$/ })
  t.match(PKG.homepage, /^https:\/\//)
  t.match(PKG.bugs, { url: /^https:\/\// })
})

t.test('npm pack, install into another project, tcptee --version from a third folder', { timeout: 300_000 }, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-pack-'))
  t.teardown(() => { rmSync(dir, { recursive: true, force: true }) })
  const src = join(dir, 'src-copy')
  mkdirSync(src)
  for (const name of ['package.json', 'package-lock.json', 'tsconfig.json', 'README.md', 'LICENSE', 'src', 'cmd', 'testkit']) {
    cpSync(join(ROOT, name), join(src, name), { recursive: true })
  }
  symlinkSync(join(ROOT, 'node_modules'), join(src, 'node_modules'), 'dir')
  const npm = { cwd: src, env: { ...process.env, npm_config_update_notifier: 'false', npm_config_fund: 'false' }, maxBuffer: 16 << 20 }
  const { stdout } = await exec('npm', ['pack', '--json', '--pack-destination', dir], npm)
  const [packed] = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ filename: string; files: Array<{ path: string }>; size: number }>
  const files = packed!.files.map((f) => f.path)
  t.comment(`${packed!.filename}: ${files.length} files, ${packed!.size} bytes`)
  t.same(files.filter((f) => f.endsWith('.map')), [], 'no source maps')
  for (const f of ['package.json', 'README.md', 'LICENSE', 'dist/cmd/tcptee.js', 'dist/src/index.js', 'dist/src/index.d.ts', 'dist/testkit/echo-server.js']) {
    t.ok(files.includes(f), `ships ${f}`)
  }
  t.same(files.filter((f) => !/^(dist\/(src|cmd|testkit)\/|package\.json$|README\.md$|LICENSE$)/.test(f)), [], 'nothing else (no tests, no sources)')
  const tarball = join(dir, packed!.filename)

  // Another project, with a version of its own, installs the tarball.
  const app = join(dir, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'some-app', version: '1.0.0', private: true }))
  let script: string
  try {
    // Offline: the dependencies come from npm's cache (CI's `npm ci` filled it); nothing is fetched.
    await exec('npm', ['install', '--offline', '--no-audit', '--no-fund', tarball], { ...npm, cwd: app })
    script = join(app, 'node_modules', '.bin', 'tcptee')
    t.comment('installed with npm install --offline')
  } catch (err) {
    // Not every dependency is in this machine's npm cache: unpack the tarball where npm would and lend it this
    // checkout's node_modules, so that what runs is still exactly the tarball's files.
    t.comment(`npm install --offline failed (${String((err as { stderr?: string }).stderr ?? err).split('\n')[0]}); unpacking the tarball instead`)
    const into = join(app, 'node_modules', 'tcptee')
    mkdirSync(into, { recursive: true })
    await exec('tar', ['xzf', tarball, '-C', into, '--strip-components=1'])
    symlinkSync(join(ROOT, 'node_modules'), join(into, 'node_modules'), 'dir')
    script = join(into, 'dist', 'cmd', 'tcptee.js')
  }
  const installed = join(app, 'node_modules', 'tcptee')
  t.notOk(existsSync(join(installed, 'src')), 'no TypeScript sources installed')
  const js = readdirSync(join(installed, 'dist', 'cmd')).filter((f) => f.endsWith('.js'))
  t.ok(js.length > 0)
  t.notOk(js.some((f) => readFileSync(join(installed, 'dist', 'cmd', f), 'utf8').includes('sourceMappingURL')), 'no pointers to maps that are not there')

  // Run from a folder inside the app (nearest package.json: the app's 1.0.0) and from one outside any package.
  const inside = join(app, 'sub')
  mkdirSync(inside)
  for (const cwd of [inside, dir]) {
    const r = await exec(process.execPath, [script, '--version'], { cwd })
    t.equal(r.stdout, `${PKG.version}\n`, `--version from ${cwd === inside ? 'inside some-app@1.0.0' : 'outside any package'}`)
  }
  const help = await exec(process.execPath, [script, '--help'], { cwd: inside })
  t.match(help.stdout, /^Usage: tcptee /)
})
