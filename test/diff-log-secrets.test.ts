// D8 (issue 17): the divergence log holds reply excerpts (payload: passwords, personal data). It was created 0644
// and followed a symlink planted at its path; the close log line carried the same excerpts at info level. Now the
// file is created 0600 with O_NOFOLLOW (a planted symlink is refused, logged once, comparing goes on), and excerpts
// reach the close line only when debug logging is asked for.
import { lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { pino, type Logger } from 'pino'
import t from 'tap'
import { client, startDup, startPeer, waitFor } from './helpers.js'

function infoLogger (): { logger: Logger; lines: Array<Record<string, unknown>> } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({ write (chunk: Buffer, _e, cb) { for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as Record<string, unknown>); cb() } })
  return { logger: pino({ level: 'info' }, stream), lines }
}

t.test('--diff-log is created 0600, refuses a planted symlink; no excerpts in info logs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'tcptee-difflog-'))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'junk')

  const file = join(dir, 'divergences.jsonl')
  const { logger, lines } = infoLogger()
  const { dup, port } = await startDup(t, main, [mirror], { diff: 'bytes', diffLog: file, logger })
  const c = client(t, port)
  await c.connected
  c.socket.end('AUTH hunter2\r\n')
  await c.ended
  await waitFor('connection done', () => dup.connectionCount === 0)
  await waitFor('the record is on disk', () => { try { return readFileSync(file, 'utf8').includes('\n') } catch { return false } })
  t.equal(statSync(file).mode & 0o777, 0o600, 'created owner-only')
  t.match(readFileSync(file, 'utf8'), /hunter2/, 'the diff log has the excerpt')
  const close = lines.find((l) => l['msg'] === 'connection closed')
  t.ok(close !== undefined, 'close line logged')
  t.notMatch(JSON.stringify(close), /hunter2|AUTH/, 'the info-level close line has no payload')
  t.match(close, { mirrors: { [`127.0.0.1:${mirror.port}`]: { diff: { outcome: 'diverged', first: { fromMain: null, fromMirror: null } } } } })

  // A symlink planted at the path is not followed: the target stays untouched and the failure is logged once.
  const target = join(dir, 'target')
  writeFileSync(target, 'precious\n')
  const link = join(dir, 'planted.jsonl')
  symlinkSync(target, link)
  const second = infoLogger()
  const { dup: dup2, port: port2 } = await startDup(t, main, [mirror], { diff: 'bytes', diffLog: link, logger: second.logger })
  const c2 = client(t, port2)
  await c2.connected
  c2.socket.end('AUTH hunter2\r\n')
  await c2.ended
  await waitFor('connection done', () => dup2.connectionCount === 0)
  await waitFor('the refusal is logged', () => second.lines.some((l) => /cannot write the diff log/.test(String(l['msg']))))
  t.equal(readFileSync(target, 'utf8'), 'precious\n', 'the symlink target is untouched')
  t.ok(lstatSync(link).isSymbolicLink(), 'the link is still a link')
})
