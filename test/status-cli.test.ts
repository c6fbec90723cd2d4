// `tcptee status` against the spawned CLI's admin endpoint (with basic auth). The table must show the mirror's state
// and fates as the endpoint reports them; a missing or wrong credential, nobody listening, and bad flags give one
// line each.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { CLI, startCli } from './support/cli-process.js'
import { client, freePort, startPeer, waitFor } from './helpers.js'

async function run (args: readonly string[], opts: { killAfter?: (out: string) => boolean; env?: NodeJS.ProcessEnv } = {}): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: opts.env ?? process.env })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
    if (opts.killAfter?.(stdout) === true) child.kill('SIGTERM')
  })
  child.stderr.on('data', (d: Buffer) => { stderr += d.toString() })
  const [code] = await once(child, 'exit') as [number | null]
  return { code, stdout, stderr }
}

const dir = mkdtempSync(join(tmpdir(), 'tcptee-status-cli-'))
const authFile = join(dir, 'auth')
writeFileSync(authFile, 'ops:pw\n', { mode: 0o600 })
const wrongAuth = join(dir, 'wrong')
writeFileSync(wrongAuth, 'ops:nope\n', { mode: 0o600 })

t.test('tcptee status prints the table; --watch refreshes; auth and connection errors are one line', async (t) => {
  const main = await startPeer(t, 'echo')
  const up = await startPeer(t, 'record')
  const down = await freePort() // nobody listens: refused
  const adminPort = await freePort()
  const cli = startCli(t, ['-l', '127.0.0.1:0', '-f', `127.0.0.1:${main.port}`, '-m', `127.0.0.1:${up.port},127.0.0.1:${down}`,
    '--admin', `127.0.0.1:${adminPort}`, '--admin-auth-file', authFile, '--log-connections'])
  await cli.line('admin endpoint listening')
  const port = Number(String((await cli.line('listening'))['listen']).split(':').pop())
  for (let i = 0; i < 3; i++) {
    const c = client(t, port)
    await c.connected
    c.socket.end('x')
    await c.ended
  }
  await waitFor('fates known', () => cli.count('connection closed') === 3)

  const admin = `127.0.0.1:${adminPort}`
  const r = await run(['status', '--admin', admin, '--auth-file', authFile])
  t.equal(r.code, 0, r.stderr)
  const lines = r.stdout.split('\n')
  t.match(lines[0], /^tcptee status at .*: 0 active connections, 3 total/)
  const header = lines.find((l) => l.startsWith('TARGET'))!
  t.match(header, /TARGET\s+STATE\s+ACTIVE\s+CONN\/S\s+BYTES\/S\s+OK\s+CUT\s+REFUSED\s+SKIPPED\s+RESET\s+LAST ERROR/)
  const row = (addr: string) => lines.find((l) => l.startsWith(addr))!.split(/\s{2,}/)
  t.same(row(`127.0.0.1:${up.port}`).slice(0, 3), [`127.0.0.1:${up.port}`, 'up', '0'])
  t.equal(row(`127.0.0.1:${up.port}`)[5], '3', 'ok fates of the healthy mirror')
  const bad = row(`127.0.0.1:${down}`)
  t.equal(bad[1], 'backing-off')
  t.equal(Number(bad[7]) + Number(bad[8]), 3, 'refused + skipped fates of the dead mirror: every connection')
  t.match(bad[10], /ECONNREFUSED/, 'its last error')

  // The rest in parallel: each is a Node start-up and one request.
  const nobodyPort = await freePort()
  const [json, w, noAuth, wrong, nobody, health, unhealthy] = await Promise.all([
    run(['status', '--admin', admin, '--auth-file', authFile, '--json']),
    // --watch: a second table comes by itself.
    run(['status', '--admin', admin, '--auth-file', authFile, '--watch', '0.3'], { killAfter: (out) => out.split('TARGET').length > 2 }),
    run(['status', '--admin', admin]),
    run(['status', '--admin', admin, '--auth-file', wrongAuth]),
    run(['status', '--admin', `127.0.0.1:${nobodyPort}`]),
    // The container HEALTHCHECK: endpoint and credentials from the variables the server itself reads.
    run(['status', '--healthz'], { env: { ...process.env, TCPTEE_ADMIN: `0.0.0.0:${adminPort}`, TCPTEE_ADMIN_AUTH_FILE: authFile } }),
    run(['status', '--healthz'], { env: { ...process.env, TCPTEE_ADMIN: `0.0.0.0:${adminPort}` } }),
  ])
  t.same([health.code, health.stdout, health.stderr], [0, '', ''], '--healthz: exit 0, silent')
  t.equal(unhealthy.code, 1, '--healthz without credentials: exit 1')
  t.equal((JSON.parse(json.stdout) as { snap: { connections: { total: number } } }).snap.connections.total, 3, '--json: the raw overview')
  t.ok(w.stdout.split('TARGET').length > 2, '--watch printed the table again')
  t.equal(noAuth.code, 1)
  t.match(noAuth.stderr, /^tcptee: http:\/\/127\.0\.0\.1:\d+\/status answered 401: it needs credentials; give --auth-file\n$/)
  t.match(wrong.stderr, /^tcptee: .* answered 401: wrong user or password in --auth-file\n$/)
  t.equal(nobody.code, 1)
  t.match(nobody.stderr, /^tcptee: cannot read http:\/\/127\.0\.0\.1:\d+\/status: ECONNREFUSED\n$/)
})

t.test('tcptee status: bad flags exit 2 with one line', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['status'], /^tcptee: --admin is required/],
    [['status', '--admin', 'nope'], /^tcptee: --admin: /],
    [['status', '--admin', ':1', '--auth-file', join(dir, 'missing')], /^tcptee: --auth-file: cannot read .*missing: ENOENT\n/],
    [['status', '--admin', ':1', '--frob'], /^tcptee: unknown flag: --frob/],
  ]
  const results = await Promise.all(cases.map(([args]) => run(args)))
  cases.forEach(([args, want], i) => {
    t.equal(results[i]!.code, 2, args.join(' '))
    t.match(results[i]!.stderr, want)
  })
})
