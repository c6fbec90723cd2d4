// The --config file is watched: Kubernetes updates a mounted ConfigMap by swapping the `..data` symlink to a new
// directory in one rename and sends no signal. The spawned CLI must apply such a swap like SIGHUP (mirror set
// replaced, open clients untouched), collapse a burst of swaps into one reload, reject a bad file with one log line
// and keep running the old config. FileWatcher is also tested in process: in-place writes, renames, no-op touches.
import t from 'tap'
import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { FileWatcher } from '../src/ops/file-watcher.js'
import { call } from './support/admin-http.js'
import { startCli } from './support/cli-process.js'
import { client, freePort, startPeer, waitFor } from './helpers.js'

/** A ConfigMap volume the way the kubelet writes it: `tcptee.yaml -> ..data/tcptee.yaml`, `..data -> ..<version>`. */
function configMapVolume (root: string) {
  let version = 0
  let current: string | undefined
  const publish = (content: string): void => {
    const dir = `..2026_12_01_00_00_${String(++version).padStart(2, '0')}`
    mkdirSync(join(root, dir))
    writeFileSync(join(root, dir, 'tcptee.yaml'), content)
    symlinkSync(dir, join(root, '..data_tmp'))
    renameSync(join(root, '..data_tmp'), join(root, '..data')) // the atomic swap
    if (current !== undefined) rmSync(join(root, current), { recursive: true })
    current = dir
  }
  return {
    file: join(root, 'tcptee.yaml'),
    publish,
    init (content: string) {
      publish(content)
      symlinkSync('..data/tcptee.yaml', join(root, 'tcptee.yaml'))
    },
  }
}

t.test('a ConfigMap-style symlink swap reloads the mirror set; bursts collapse; a bad file is rejected once', async (t) => {
  const main = await startPeer(t, 'echo')
  const m1 = await startPeer(t, 'record', { keep: true })
  const m2 = await startPeer(t, 'record', { keep: true })
  const adminPort = await freePort()
  const vol = configMapVolume(mkdtempSync(join(tmpdir(), 'tcptee-configmap-')))
  const base = `listen: 127.0.0.1:0\nforward: 127.0.0.1:${main.port}\nadmin: 127.0.0.1:${adminPort}\n`
  vol.init(`${base}mirror: [127.0.0.1:${m1.port}]\n`)
  const cli = startCli(t, ['--config', vol.file])
  await cli.line('admin endpoint listening')
  const port = Number(String((await cli.line('listening'))['listen']).split(':').pop())
  const reloads = () => cli.count('configuration reloaded')
  const active = async () => ((await call(adminPort, '/mirrors')).json()['mirrors'] as Array<{ address: string; state: string }>)
    .filter((m) => m.state !== 'removed').map((m) => m.address)

  const open = client(t, port)
  await open.connected
  open.socket.write('before-')
  await waitFor('echo', () => open.bytes === 7)

  vol.publish(`${base}mirror: [127.0.0.1:${m2.port}]\n`)
  const line = await cli.line('configuration reloaded')
  t.equal(line['trigger'], 'config file changed', 'reloaded by the watcher, no signal sent')
  t.same(await active(), [`127.0.0.1:${m2.port}`], 'the mirror set is the new file\'s')
  open.socket.end('after')
  await open.ended
  t.equal(open.text(), 'before-after', 'the open client went on through the reload')
  const c2 = client(t, port)
  await c2.connected
  c2.socket.end('c2')
  await c2.ended
  const m2c = await m2.conn(0)
  await m2c.ended
  t.equal(Buffer.concat(m2c.chunks).toString(), 'c2', 'a new client is mirrored to the new mirror')

  // A bad file: one error line, the running mirror set stays.
  vol.publish(`${base}mirror: [not-an-address]\n`)
  const rejected = await cli.line('configuration reload rejected')
  t.equal(rejected['trigger'], 'config file changed')
  t.match(String(rejected['err']), /not-an-address/, 'the line says what is wrong')
  t.same(await active(), [`127.0.0.1:${m2.port}`], 'the old mirror set stays')

  // Three swaps in a burst (within the debounce) make one reload, of the last content.
  const before = reloads()
  vol.publish(`${base}mirror: [127.0.0.1:${m1.port}]\n`)
  vol.publish(`${base}mirror: [127.0.0.1:${m2.port}]\n`)
  vol.publish(`${base}mirror: [127.0.0.1:${m1.port}, 127.0.0.1:${m2.port}]\n`)
  await cli.line('configuration reloaded', { n: before })
  t.same((await active()).sort(), [`127.0.0.1:${m1.port}`, `127.0.0.1:${m2.port}`].sort(), 'the last swap\'s mirror set')
  // One more change proves no reload was still queued from the burst: the next reload is exactly the next one.
  vol.publish(`${base}mirror: [127.0.0.1:${m1.port}]\npercent: 50\n`)
  await cli.line('configuration reloaded', { n: before + 1 })
  t.equal(reloads(), before + 2, 'the burst made one reload')
  t.equal(cli.count('configuration reload rejected'), 1, 'the bad file was logged once')
})

t.test('FileWatcher: in-place writes and rename-over are changes; a rewrite with the same bytes is not', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-watch-'))
  const file = join(dir, 'c.yaml')
  writeFileSync(file, 'a: 1\n')
  let changes = 0
  const w = new FileWatcher(file, () => { changes++ }, { debounceMs: 50 })
  t.teardown(() => w.close())
  writeFileSync(file, 'a: 2\n')
  await waitFor('in-place write', () => changes === 1)
  writeFileSync(join(dir, 'c.yaml.tmp'), 'a: 3\n')
  renameSync(join(dir, 'c.yaml.tmp'), file) // how editors and config management tools save
  await waitFor('rename over', () => changes === 2)
  writeFileSync(file, 'a: 3\n') // same bytes
  writeFileSync(join(dir, 'other.txt'), 'x') // another file in the directory
  writeFileSync(file, 'a: 4\n')
  await waitFor('the next real change', () => changes >= 3)
  t.equal(changes, 3, 'the same-bytes rewrite and the other file were not changes')
  w.close()
  w.close() // safe twice
})
