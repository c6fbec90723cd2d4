// Protocol-aware mirrors: what `--protocol redis` (login rewriting) and `--protocol http` (request rewriting and
// filtering) cost beside `--protocol tcp`, with real servers and real request traffic.
//
//   npm run build && node dist/bench/protocols.js [--seconds 3] [--out bench/results/protocols-latest.json]
//
// redis: redis-benchmark (50 connections, -P 16, SET/GET) through tcptee to redis-server main (requirepass A) and one
// mirror: `tcp` with the mirror on the same password A, `redis` with the mirror on B and --mirror-credentials.
// http: a keep-alive node:http client (20 connections, GET with a small body back) through tcptee to node:http main
// and mirror in their own processes: `tcp`; `http` rewriting Host and adding a header; `http` also filtering by method
// and header hash (half the requests left out).
// Each row: requests/s seen by the client and tcptee's CPU seconds per 100k requests (utime+stime from /proc).
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { once } from 'node:events'
import { treeCpuSeconds, processTree } from './procfs.js'

const here = path.dirname(fileURLToPath(import.meta.url))
const tcpteeBin = path.join(here, '..', 'cmd', 'tcptee.js')
const args = process.argv.slice(2)
const arg = (name: string, def: string): string => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] ?? def : def }
const seconds = Number(arg('--seconds', '3'))
const out = arg('--out', path.join(here, '..', '..', 'bench', 'results', 'protocols-latest.json'))

const children: ChildProcess[] = []
function start (cmd: string, argv: string[]): ChildProcess {
  const c = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'] })
  children.push(c)
  return c
}
process.on('exit', () => { for (const c of children) c.kill('SIGKILL') })

async function freePort (): Promise<number> {
  const s = net.createServer().listen(0, '127.0.0.1')
  await once(s, 'listening')
  const port = (s.address() as net.AddressInfo).port
  s.close()
  return port
}

async function waitPort (port: number): Promise<void> {
  for (let i = 0; i < 200; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = net.connect({ port, host: '127.0.0.1' }, () => { s.destroy(); resolve(true) })
      s.on('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
  throw new Error(`nothing listens on ${port}`)
}

async function tcptee (main: number, mirror: string, extra: string[]): Promise<{ port: number, proc: ChildProcess }> {
  const port = await freePort()
  const proc = start(process.execPath, [tcpteeBin, '-l', `127.0.0.1:${port}`, '-f', `127.0.0.1:${main}`, '-m', mirror, '--log-level', 'warn', ...extra])
  await waitPort(port)
  return { port, proc }
}

interface Row { workload: string, protocol: string, setup: string, reqPerSec: number, proxyCpuPer100k: number }
const rows: Row[] = []

async function measure (proc: ChildProcess, run: () => Promise<number>): Promise<{ rps: number, cpu: number }> {
  const pids = processTree(proc.pid!)
  const cpu0 = treeCpuSeconds(pids)
  const t0 = Date.now()
  const requests = await run()
  const elapsed = (Date.now() - t0) / 1000
  const cpu = treeCpuSeconds(pids) - cpu0
  return { rps: requests / elapsed, cpu: cpu / requests * 100_000 }
}

async function redisServer (password: string): Promise<number> {
  const port = await freePort()
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tcptee-bench-redis-'))
  start('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no', '--requirepass', password, '--logfile', ''])
  await waitPort(port)
  return port
}

async function redisBenchmark (port: number, runSeconds = seconds): Promise<number> {
  const n = Math.round(40_000 * runSeconds)
  const c = start('redis-benchmark', ['-h', '127.0.0.1', '-p', String(port), '-a', 'A', '-n', String(n), '-c', '50', '-P', '16', '-t', 'set,get', '-q'])
  const [code] = await once(c, 'exit') as [number]
  if (code !== 0) throw new Error(`redis-benchmark exited ${code}`)
  return n * 2
}

async function benchRedis (): Promise<void> {
  const main = await redisServer('A')
  const sameMirror = await redisServer('A')
  const otherMirror = await redisServer('B')
  const creds = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'tcptee-bench-creds-')), 'mirrors.json')
  fs.writeFileSync(creds, JSON.stringify({ [`127.0.0.1:${otherMirror}`]: { default: 'B' } }), { mode: 0o600 })
  const setups: Array<[string, string, string, string[]]> = [
    ['tcp', 'mirror with the same password', `127.0.0.1:${sameMirror}`, []],
    ['redis', 'mirror with its own password (--mirror-credentials)', `127.0.0.1:${otherMirror}`, ['--protocol', 'redis', '--mirror-credentials', creds]],
  ]
  for (const [protocol, setup, mirror, extra] of setups) {
    const tee = await tcptee(main, mirror, extra)
    await redisBenchmark(tee.port, 0.25) // warm-up, not measured
    const r = await measure(tee.proc, () => redisBenchmark(tee.port))
    rows.push({ workload: 'redis-benchmark SET+GET, 50 conns, -P 16', protocol, setup, reqPerSec: Math.round(r.rps), proxyCpuPer100k: Number(r.cpu.toFixed(3)) })
    tee.proc.kill('SIGTERM')
    await once(tee.proc, 'exit')
  }
}

const SERVER = `
const http = require('node:http')
const s = http.createServer((req, res) => { req.resume(); req.on('end', () => { res.writeHead(200, { 'content-length': 64 }); res.end('x'.repeat(64)) }) })
s.keepAliveTimeout = 60000
s.listen(Number(process.argv[1]), '127.0.0.1')
`

async function httpServer (): Promise<number> {
  const port = await freePort()
  start(process.execPath, ['-e', SERVER, String(port)])
  await waitPort(port)
  return port
}

async function httpLoad (port: number, runSeconds = seconds): Promise<number> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 20 })
  const until = Date.now() + runSeconds * 1000
  let done = 0
  const one = (i: number): Promise<void> => new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path: `/item/${i}`, agent, headers: { 'user-id': `u${i % 1000}` } }, (res) => {
      res.resume()
      res.on('end', () => { done++; resolve() })
    })
    req.on('error', reject)
    req.end()
  })
  let i = 0
  await Promise.all(Array.from({ length: 20 }, async () => { while (Date.now() < until) await one(i++) }))
  agent.destroy()
  return done
}

async function benchHttp (): Promise<void> {
  const main = await httpServer()
  const mirror = await httpServer()
  const setups: Array<[string, string, string[]]> = [
    ['tcp', 'bytes only', []],
    ['http', 'Host rewrite + X-Shadow header', ['--protocol', 'http', '--mirror-http-host', 'staging.example.com', '--mirror-http-header', 'X-Shadow: 1']],
    ['http', 'rewrite + method filter + header hash 1/2', ['--protocol', 'http', '--mirror-http-host', 'staging.example.com', '--mirror-http-header', 'X-Shadow: 1', '--mirror-http-method', 'GET', '--mirror-http-header-hash', 'user-id:1/2']],
  ]
  await httpLoad(main, 1) // warm-up of client and servers (JIT), not measured
  const t0 = Date.now()
  const direct = await httpLoad(main)
  rows.push({ workload: 'HTTP/1.1 GET, 20 keep-alive conns', protocol: '–', setup: 'direct to main (no tcptee)', reqPerSec: Math.round(direct / ((Date.now() - t0) / 1000)), proxyCpuPer100k: 0 })
  for (const [protocol, setup, extra] of setups) {
    const tee = await tcptee(main, `127.0.0.1:${mirror}`, extra)
    await httpLoad(tee.port, 0.5) // tcptee's warm-up, not measured
    const r = await measure(tee.proc, () => httpLoad(tee.port))
    rows.push({ workload: 'HTTP/1.1 GET, 20 keep-alive conns', protocol, setup, reqPerSec: Math.round(r.rps), proxyCpuPer100k: Number(r.cpu.toFixed(3)) })
    tee.proc.kill('SIGTERM')
    await once(tee.proc, 'exit')
  }
}

if (!args.includes('--http-only')) await benchRedis()
await benchHttp()
const lines = ['| workload | --protocol | mirror setup | req/s | tcptee CPU s/100k req |', '| --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.workload} | \`${r.protocol}\` | ${r.setup} | ${r.reqPerSec} | ${r.proxyCpuPer100k} |`)]
console.log(lines.join('\n'))
fs.writeFileSync(out, JSON.stringify({ meta: { startedAt: new Date().toISOString(), seconds, node: process.version, cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? '?'}` }, rows }, null, 2) + '\n')
process.exit(0)
