// SIGHUP on the spawned CLI: the config file is re-read and the mirror set and sampling applied without dropping a
// client connection; a file that does not parse or validate is rejected with one log line and the running config stays.
import t from 'tap'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { call } from './support/admin-http.js'
import { captureLogger, client, freePort, startPeer, waitFor } from './helpers.js'
import { reloadConfig } from '../cmd/tcptee/config-file.js'
import type { CliOptions } from '../cmd/tcptee/args.js'
import { createDuplicator } from '../src/index.js'
import { OPTIONS } from '../src/options.js'

const CLI = fileURLToPath(new URL('../dist/cmd/tcptee.js', import.meta.url))

t.test('SIGHUP applies the new mirror set; bad files are rejected', async (t) => {
  const main = await startPeer(t, 'echo')
  const m1 = await startPeer(t, 'record', { keep: true })
  const m2 = await startPeer(t, 'record', { keep: true })
  const adminPort = await freePort()
  const file = join(mkdtempSync(join(tmpdir(), 'tcptee-reload-')), 'tcptee.yaml')
  const base = `listen: 127.0.0.1:0\nforward: 127.0.0.1:${main.port}\nadmin: 127.0.0.1:${adminPort}\n`
  writeFileSync(file, `${base}mirror: [127.0.0.1:${m1.port}]\n`)

  const child = spawn(process.execPath, [CLI, '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] })
  t.teardown(() => { child.kill('SIGKILL') })
  const lines: Array<Record<string, unknown>> = []
  let buf = ''
  child.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    let nl
    while ((nl = buf.indexOf('\n')) >= 0) { lines.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>); buf = buf.slice(nl + 1) }
  })
  await waitFor(() => lines.some((l) => l['msg'] === 'admin endpoint listening'), 10_000, 'CLI to start')
  const port = Number(String(lines.find((l) => l['msg'] === 'listening')!['listen']).split(':').pop())
  const count = (msg: string) => lines.filter((l) => String(l['msg']).startsWith(msg)).length

  const c1 = client(t, port)
  await c1.connected
  c1.socket.write('before-')
  await waitFor(() => c1.bytes === 7, 2000, 'echo')

  writeFileSync(file, `${base}mirror: [127.0.0.1:${m2.port}]\npercent: 100\n`)
  child.kill('SIGHUP')
  await waitFor(() => count('configuration reloaded') === 1, 5000, 'reload')
  c1.socket.end('after')
  await c1.ended
  t.equal(c1.text(), 'before-after', 'the open client connection went on through the reload')
  t.notOk(c1.error)

  const c2 = client(t, port)
  await c2.connected
  c2.socket.end('c2')
  await c2.ended
  const m2c = await m2.conn(0)
  await m2c.ended
  t.equal(Buffer.concat(m2c.chunks).toString(), 'c2', 'the new mirror gets new connections')
  t.equal(m1.conns.length, 1, 'the mirror dropped from the file gets no new connection')
  const list = (await call(adminPort, '/mirrors')).json()['mirrors'] as Array<Record<string, unknown>>
  t.match(list, [
    { address: `127.0.0.1:${m2.port}`, origin: 'config', state: 'up' },
    { address: `127.0.0.1:${m1.port}`, origin: 'config', state: 'removed' },
  ])

  // Broken files: one error line each, nothing changes.
  const bad = ['mirror: [unclosed\n', `${base}percent: 200\n`, `${base}nonsense: 1\n`]
  for (let i = 0; i < bad.length; i++) {
    writeFileSync(file, bad[i]!)
    child.kill('SIGHUP')
    await waitFor(() => count('configuration reload rejected') === i + 1, 5000, `rejection ${i + 1}`)
  }
  const rejected = lines.filter((l) => String(l['msg']).startsWith('configuration reload rejected'))
  t.equal(rejected.length, 3, 'one line per rejected reload')
  t.match(rejected[0]!['msg'], /not valid YAML/)
  t.match(rejected[1]!['msg'], /--percent: "200" is not a percentage/)
  t.match(rejected[2]!['msg'], /unknown key "nonsense"/)
  t.ok(rejected.every((l) => l['level'] === 50), 'logged at error level')
  const c3 = client(t, port)
  await c3.connected
  c3.socket.end('c3')
  await c3.ended
  await (await m2.conn(1)).ended
  t.equal(m2.conns.length, 2, 'the running mirror set stayed')
  t.equal(m1.conns.length, 1)
  t.equal(child.exitCode, null, 'still running')
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit') as [number]
  t.equal(code, 0)
})

// Regression: the restart list in Duplicator.reconfigure was hand-kept and lacked diff and mirror-batch, so a reload
// that changed them neither applied them nor said that they need a restart.
t.test('reload: every changed restart option is reported by its flag; apply options are applied', async (t) => {
  const start: CliOptions = {
    listen: '127.0.0.1:0', main: '127.0.0.1:9', mirrors: ['127.0.0.1:10'], workers: 1, logLevel: 'info', logFormat: 'json',
    admin: undefined, adminAuthFile: undefined, config: undefined,
  }
  const dup = createDuplicator(start)
  const { logger, lines } = captureLogger()
  const reload = async (change: Partial<CliOptions>) => {
    lines.length = 0
    t.ok(await reloadConfig(dup, async () => ({ ...start, ...change }), logger, start))
    return lines.find((l) => String(l['msg']).startsWith('configuration reloaded'))!['restartNeeded']
  }
  t.same(await reload({ mirrorBatch: 0, diff: 'bytes' }), ['--mirror-batch', '--diff'])
  t.same(await reload({ mirrorBatch: '20ms' }), [], 'the same value written differently is no change')
  t.same(await reload({ workers: 2, logLevel: 'debug', mainTls: 'on', proxyProtocolIn: true }), ['--main-tls', '--proxy-protocol-in', '--log-level', '--workers'],
    'CLI-only options too')
  t.same(await reload({ percent: 30, mirrors: ['127.0.0.1:11'] }), [], 'apply options are not reported...')
  t.equal(dup.percent, 30, '...but applied')
  t.same(dup.listMirrors().filter((m) => m.state !== 'removed').map((m) => m.address), ['127.0.0.1:11'])
  // Every restart option, changed one at a time, is reported under its own flag.
  const changed: Record<string, unknown> = {
    listen: '127.0.0.1:1', main: '127.0.0.1:8', mirrorConnectTimeout: '1s', retryDelay: '1s', mirrorWriteTimeout: '1s', mirrorBuffer: '8MiB',
    connectTimeout: '1s', shutdownTimeout: '1s', logLevel: 'warn', logFormat: 'pretty', mirrorBatch: '5ms', workers: 3, seed: 7,
    failAfter: '1m', cutOffThreshold: 5, admin: '127.0.0.1:1', adminAuthFile: 'x', diff: 'http', tlsCa: 'ca.pem', tlsServername: 'x',
    mainTls: 'verify', mirrorTls: 'on', proxyProtocolIn: true, proxyProtocolOut: 'v1', mirrorProxyProtocol: 'v2', protocol: 'postgres', logConnections: true,
    diffIgnore: ['GET /health*'], diffBaseline: '127.0.0.1:12', maxConnections: 10, metricsMaxMirrors: 50,
    mirrorSplit: true, mirrorHttpHost: 'staging.example.com', mirrorHttpHeader: ['X-Shadow: 1'],
    mirrorHttpMethod: ['GET'], mirrorHttpUrl: '^/api/', mirrorHttpHeaderFilter: ['x-tenant:blue'], mirrorHttpHeaderHash: 'user-id:1/32',
    record: 'traffic.pcapng', recordMaxSize: '2GiB', recordBuffer: '32MiB',
  }
  for (const o of OPTIONS.filter((o) => o.reload === 'restart')) {
    const extra: Partial<CliOptions> = o.key.startsWith('diff') && o.key !== 'diff' ? { diff: 'http' } : o.key === 'proxyProtocolFrom' ? { proxyProtocolIn: true }
      : o.key.startsWith('mirrorHttp') ? { protocol: 'http' } : o.key === 'recordMaxSize' || o.key === 'recordBuffer' ? { record: 'traffic.pcapng' } : {}
    const value = changed[o.key] ?? (o.key === 'diffWindow' ? '8MiB' : o.key === 'diffIgnoreHeaders' ? ['date'] : o.key === 'diffLog' ? 'd.log' : o.key === 'proxyProtocolFrom' ? ['10.0.0.0/8'] : undefined)
    t.not(value, undefined, `a changed value for ${o.flag}`)
    const got = await reload({ ...extra, [o.key]: value }) as string[]
    t.ok(got.includes(`--${o.flag}`), `--${o.flag} reported (${got.join(' ')})`)
  }
  await dup.close(0)
})
