#!/usr/bin/env node
// `npm run demo`: tcptee's main job on loopback in a few seconds. A bundled echo server plays main, a recording server
// plays the mirror; clients push traffic through tcptee; at the end it prints what each side received and whether
// the streams match. Nothing is needed but Node.
import { createHash, randomBytes } from 'node:crypto'
import { once } from 'node:events'
import { connect, createServer, type Server } from 'node:net'
import { createDuplicator, createLogger } from '../src/index.js'

const CLIENTS = 20
const SECONDS = 3

interface Recorder { bytes: number; streams: Map<number, ReturnType<typeof createHash>> }

async function startServer (kind: 'echo' | 'record', rec: Recorder): Promise<{ server: Server; port: number }> {
  let next = 0
  const server = createServer({ allowHalfOpen: true }, (s) => {
    const id = next++
    const h = createHash('sha256')
    rec.streams.set(id, h)
    s.on('data', (d: Buffer) => {
      rec.bytes += d.length
      h.update(d)
      if (kind === 'echo') s.write(d)
    })
    s.on('end', () => s.end())
    s.on('error', () => {})
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  return { server, port: (server.address() as { port: number }).port }
}

async function main (): Promise<void> {
  const mainRec: Recorder = { bytes: 0, streams: new Map() }
  const mirrorRec: Recorder = { bytes: 0, streams: new Map() }
  const echo = await startServer('echo', mainRec)
  const recorder = await startServer('record', mirrorRec)
  const logger = await createLogger({ level: 'warn', format: 'pretty', fd: 2 })
  const dup = createDuplicator({ listen: '127.0.0.1:0', main: { host: '127.0.0.1', port: echo.port }, mirrors: [{ host: '127.0.0.1', port: recorder.port }], logger })
  const { port } = await dup.listen()
  console.log(`main (echo)      127.0.0.1:${echo.port}`)
  console.log(`mirror (record)  127.0.0.1:${recorder.port}`)
  console.log(`tcptee           127.0.0.1:${port}   (${CLIENTS} clients, ${SECONDS} s of request/response traffic)\n`)

  const deadline = Date.now() + SECONDS * 1000
  let requests = 0
  let mismatches = 0
  const sent: string[] = []
  await Promise.all(Array.from({ length: CLIENTS }, async () => {
    const s = connect({ port, host: '127.0.0.1', allowHalfOpen: true, noDelay: true })
    await once(s, 'connect')
    const h = createHash('sha256')
    while (Date.now() < deadline) {
      const line = Buffer.from(randomBytes(16 + Math.floor(Math.random() * 500)).toString('base64') + '\n')
      h.update(line)
      s.write(line)
      let got = Buffer.alloc(0)
      while (got.length < line.length) got = Buffer.concat([got, (await once(s, 'data'))[0] as Buffer])
      if (!got.equals(line)) mismatches++
      requests++
    }
    s.end()
    await once(s, 'close')
    sent.push(h.digest('hex'))
  }))
  await dup.close()
  const digests = (r: Recorder): string[] => [...r.streams.values()].map((h) => h.digest('hex')).sort()
  const want = sent.sort()
  const mainOk = JSON.stringify(digests(mainRec)) === JSON.stringify(want)
  const mirrorOk = JSON.stringify(digests(mirrorRec)) === JSON.stringify(want)
  const m = dup.metrics()
  console.log(`requests         ${requests} (${Math.round(requests / SECONDS)} req/s), echo mismatches: ${mismatches}`)
  console.log(`clients sent     ${m.bytes.clientToMain} bytes on ${m.connections.total} connections`)
  console.log(`main received    ${mainRec.bytes} bytes on ${mainRec.streams.size} connections   streams match: ${mainOk ? 'yes' : 'NO'}`)
  console.log(`mirror received  ${mirrorRec.bytes} bytes on ${mirrorRec.streams.size} connections   streams match: ${mirrorOk ? 'yes' : 'NO'}`)
  console.log(`clients got back ${m.bytes.mainToClient} bytes (main's replies only)`)
  echo.server.close()
  recorder.server.close()
  process.exitCode = mainOk && mirrorOk && mismatches === 0 ? 0 : 1
}

main().catch((err: unknown) => {
  process.stderr.write(`demo: ${err instanceof Error ? err.message : String(err)}\n`)
  process.exit(1)
})
