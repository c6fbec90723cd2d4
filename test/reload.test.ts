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
import { client, freePort, startPeer, waitFor } from './helpers.js'

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
