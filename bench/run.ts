// tcptee benchmark: `npm run bench [-- --quick | --smoke] [--save] [--rounds N] [--only a,b]
//   [--peer name='cmd -l :{listen} -f :{main} -m :{mirror}'] [--tcptee-args "--workers 2"] [--proxy-cpus 1 --load-cpus 0]`
//
// Per scenario, every setup's processes (test servers, proxy) start once and
// serve all its rounds; each client run is a fresh process. Each is a separate
// `node` on loopback so CPU is attributable. Rounds are interleaved
// (A B C A B C ...) and each setup reports the median over its rounds.
// Every wait is bounded: a proxy that stalls costs its time limit, never a hang.
// Results: a markdown table per scenario on stdout, JSON in bench/results/runs/<timestamp>.json and
// bench/results/runs/latest.json (ignored by git); with --save also in the committed bench/results/latest.json.
import os from 'node:os'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import yargs from 'yargs'
import { hideBin } from 'yargs/helpers'
import type { LoadSummary } from '../testkit/load-client.js'
import { parseDuration, parseSize } from '../testkit/parse.js'
import { start, waitForLine, waitForPort, freePorts, kill, waitOrKill, running as runningProcs, type Proc } from './child.js'
import { processTree, treeCpuSeconds, cpuSeconds, peakRssKiB, treeIoSyscalls } from './procfs.js'
import { setups as allSetups, scenarios as allScenarios, TIMINGS, type Setup, type Scenario, type Timing, type MirrorKind, type PeerBinaries } from './setups.js'
import { aggregate, table, type RunRecord, type RunStatus, type SetupResult } from './report.js'

const dist = fileURLToPath(new URL('..', import.meta.url)) // dist/
const repo = fileURLToPath(new URL('../..', import.meta.url))
const bin = {
  server: join(dist, 'cmd', 'tcptee-testserver.js'),
  client: join(dist, 'cmd', 'tcptee-testclient.js'),
  tcptee: join(dist, 'cmd', 'tcptee.js'),
  naive: join(dist, 'bench', 'naive-duplicator.js')
}
const READY_MS = 30_000 // generous: every setup of a scenario starts at once, and the test suite runs beside it

function fail (message: string): never {
  process.stderr.write(`bench: ${message}\n`)
  process.exit(2)
}

const argv = yargs(hideBin(process.argv))
  .scriptName('npm run bench --')
  .locale('en')
  .option('quick', { type: 'boolean', default: false, describe: 'short runs (under a minute)' })
  .option('smoke', { type: 'boolean', default: false, describe: 'shortest runs, 1 round, 16 MiB bulk (for the test suite)' })
  .option('rounds', { type: 'number', requiresArg: true, describe: 'rounds per setup (median reported)' })
  .option('only', { type: 'string', array: true, requiresArg: true, describe: 'setup names to run (comma-separated or repeated); direct is always kept' })
  .option('scenario', { type: 'string', array: true, requiresArg: true, describe: 'scenarios to run: pingpong-10, pingpong-100, bulk' })
  .option('peer', { type: 'string', array: true, requiresArg: true, describe: 'name=\'command template\' with {listen} {main} {mirror} ports' })
  .option('peers', { type: 'string', requiresArg: true, describe: 'folder built by ../shared/peers/build.sh: adds goduplicator, agnoster/duplicator, HAProxy (no mirror) and the go-pingpong scenarios' })
  .option('tcptee-args', { type: 'string', requiresArg: true, default: '', describe: 'extra arguments for tcptee, e.g. "--workers 2"' })
  .option('proxy-cpus', { type: 'string', requiresArg: true, describe: 'pin every proxy (tcptee and its workers, peers, HAProxy) to these CPUs with taskset -c, e.g. 1 or 2-3' })
  .option('load-cpus', { type: 'string', requiresArg: true, describe: 'pin the clients and test servers (main, mirrors) to these CPUs with taskset -c, e.g. 0' })
  .option('duration', { type: 'string', requiresArg: true, describe: 'ping-pong run time per round (overrides the mode)' })
  .option('bulk', { type: 'string', requiresArg: true, describe: 'bulk bytes per run (overrides the mode), e.g. 512MiB' })
  .option('out-dir', { type: 'string', requiresArg: true, describe: 'where the JSON goes (default bench/results/runs, ignored by git)' })
  .option('save', { type: 'boolean', default: false, describe: 'also replace the committed bench/results/latest.json (npm run bench:save)' })
  .strict()
  .help()
  .version(false)
  .fail((msg: string | null, err: Error | null) => { fail(msg ?? err?.message ?? 'invalid arguments') })
  .parseSync()

const mode = argv.smoke ? 'smoke' : argv.quick ? 'quick' : 'full'
const timing: Timing = { ...TIMINGS[mode] }
if (argv.rounds !== undefined) {
  if (!Number.isInteger(argv.rounds) || argv.rounds < 1) fail('--rounds: must be a positive integer')
  timing.rounds = argv.rounds
}
/** Sizes do not name their flag (UsageError); durations do (the core's ConfigError). */
function parseSizeFlag (text: string): number {
  try {
    return parseSize(text)
  } catch (err) {
    throw new Error(`--bulk: ${(err as Error).message}`)
  }
}

try {
  if (argv.duration !== undefined) timing.pingPongMs = parseDuration(argv.duration, '--duration')
  if (argv.bulk !== undefined) timing.bulkBytes = parseSizeFlag(argv.bulk)
} catch (err) {
  fail((err as Error).message)
}

const peers: Array<[string, string]> = (argv.peer ?? []).map((spec) => {
  const eq = spec.indexOf('=')
  if (eq < 1) fail(`--peer: expected name='command template', got "${spec}"`)
  const template = spec.slice(eq + 1)
  if (!template.includes('{listen}') || !template.includes('{main}') || !template.includes('{mirror}')) {
    fail(`--peer ${spec.slice(0, eq)}: the template needs {listen}, {main} and {mirror}`)
  }
  return [spec.slice(0, eq), template]
})
const tcpteeArgs = splitCommand(argv['tcptee-args'])

/** `--proxy-cpus`, `--load-cpus`: a CPU list as taskset -c takes it (`0`, `1,3`, `2-5`). */
const CPU_LIST = /^\d+(-\d+)?(,\d+(-\d+)?)*$/
for (const flag of ['proxy-cpus', 'load-cpus'] as const) {
  const list = argv[flag]
  if (list !== undefined && !CPU_LIST.test(list)) fail(`--${flag}: expected a CPU list like 1 or 0,2 or 2-3, got "${list}"`)
}
if ((argv['proxy-cpus'] !== undefined || argv['load-cpus'] !== undefined) && !existsSync('/usr/bin/taskset')) {
  fail('--proxy-cpus/--load-cpus: need taskset (util-linux)')
}

/**
 * Starts a process pinned to `cpus` (taskset -c; taskset execs the command, so the pid is the process itself and a
 * tcptee with --workers passes the affinity on to its workers) or unpinned when `cpus` is undefined.
 */
function startPinned (name: string, cpus: string | undefined, command: string, args: string[]): Proc {
  return cpus === undefined ? start(name, command, args) : start(name, '/usr/bin/taskset', ['-c', cpus, command, ...args])
}
const loadCpus = argv['load-cpus']
const proxyCpus = argv['proxy-cpus']

/** `--peers DIR`: the binaries build.sh puts there; each is used only when present. */
const peerBin: PeerBinaries = {}
if (argv.peers !== undefined) {
  const dir = argv.peers
  if (!existsSync(dir)) fail(`--peers: ${dir} does not exist (build it with ../shared/peers/build.sh ${dir})`)
  const found = (name: string): string | undefined => existsSync(join(dir, name)) ? join(dir, name) : undefined
  peerBin.goduplicator = found('goduplicator')
  peerBin.goClient = found('goduplicatortestclient')
  peerBin.goServer = found('goduplicatortestserver')
  peerBin.agnoster = found(join('agnoster', 'bin', 'duplicator'))
  peerBin.haproxyTemplate = found('haproxy.cfg.tpl')
  const named = new Set(peers.map(([n]) => n))
  if (peerBin.goduplicator !== undefined && !named.has('goduplicator')) {
    peers.push(['goduplicator', `${peerBin.goduplicator} -l 127.0.0.1:{listen} -f 127.0.0.1:{main} -m 127.0.0.1:{mirror}`])
  }
  if (peerBin.agnoster !== undefined && !named.has('agnoster')) {
    peers.push(['agnoster', `${process.execPath} ${peerBin.agnoster} -p {listen} -i 127.0.0.1 -f 127.0.0.1:{main} -d 127.0.0.1:{mirror}`])
  }
}

let setups = allSetups(peers, peerBin.haproxyTemplate)
if (argv.only !== undefined) {
  const wanted = new Set(argv.only.flatMap((s) => s.split(',')).map((s) => s.trim()).filter((s) => s !== ''))
  const unknown = [...wanted].filter((n) => !setups.some((s) => s.name === n))
  if (unknown.length > 0) fail(`--only: unknown setup ${unknown.join(', ')} (known: ${setups.map((s) => s.name).join(', ')})`)
  setups = setups.filter((s) => s.name === 'direct' || wanted.has(s.name))
}
let scenarios = allScenarios(timing, peerBin.goClient !== undefined && peerBin.goServer !== undefined)
if (argv.scenario !== undefined) {
  const wanted = new Set(argv.scenario.flatMap((s) => s.split(',')).map((s) => s.trim()))
  const unknown = [...wanted].filter((n) => !scenarios.some((s) => s.name === n))
  if (unknown.length > 0) fail(`--scenario: unknown ${unknown.join(', ')} (known: ${scenarios.map((s) => s.name).join(', ')})`)
  scenarios = scenarios.filter((s) => wanted.has(s.name))
}

/** Split a command line on whitespace, honouring '...' and "..." quotes. */
function splitCommand (text: string): string[] {
  const out: string[] = []
  const re = /"([^"]*)"|'([^']*)'|(\S+)/g
  for (const m of text.matchAll(re)) out.push(m[1] ?? m[2] ?? m[3] ?? '')
  return out
}

interface Server { proc: Proc, port: number }

async function startServer (name: string, serverMode: 'echo' | 'sink' | 'stall', load: Scenario['load'] = 'bundled'): Promise<Server> {
  if (load === 'go' && serverMode === 'echo') {
    // goduplicator's echo server: no readiness line, so its port is picked here and polled.
    const [port] = await freePorts(1)
    const proc = startPinned(name, loadCpus, peerBin.goServer!, ['-l', `127.0.0.1:${port!}`])
    await waitForPort(proc, port!, READY_MS)
    return { proc, port: port! }
  }
  const args = [bin.server, '-l', '127.0.0.1:0', '-q']
  if (serverMode !== 'echo') args.push(`--${serverMode}`)
  const proc = startPinned(name, loadCpus, process.execPath, args)
  const m = await waitForLine(proc, /listening on [^\s]+:(\d+)/, READY_MS)
  return { proc, port: Number(m[1]) }
}

/** `{tmp}` in a setup's arguments: a directory of this run (recordings), removed when the run exits. */
let tmpDir: string | undefined
function setupArg (a: string): string {
  if (!a.includes('{tmp}')) return a
  if (tmpDir === undefined) {
    const dir = mkdtempSync(join(os.tmpdir(), 'tcptee-bench-'))
    tmpDir = dir
    process.on('exit', () => { rmSync(dir, { recursive: true, force: true }) })
  }
  return a.replaceAll('{tmp}', tmpDir)
}

function proxyCommand (setup: Setup, listen: number, main: number, mirrors: number[]): [string, string[]] {
  switch (setup.proxy) {
    case 'tcptee':
      return [process.execPath, [...(setup.nodeArgs ?? []), bin.tcptee, '-l', `127.0.0.1:${listen}`, '-f', `127.0.0.1:${main}`,
        ...mirrors.flatMap((p) => ['-m', `127.0.0.1:${p}`]), '--log-level', 'warn', ...(setup.args ?? []).map(setupArg), ...tcpteeArgs]]
    case 'naive':
      return [process.execPath, [bin.naive, '-l', String(listen), '-f', String(main), '-m', String(mirrors[0])]]
    case 'peer': {
      const words = splitCommand(setup.template!.replaceAll('{listen}', String(listen))
        .replaceAll('{main}', String(main)).replaceAll('{mirror}', String(mirrors[0])))
      return [words[0]!, words.slice(1)]
    }
    case 'haproxy': {
      const dir = mkdtempSync(join(os.tmpdir(), 'tcptee-bench-haproxy-'))
      const file = join(dir, 'haproxy.cfg')
      writeFileSync(file, readFileSync(setup.template!, 'utf8').replaceAll('{listen}', String(listen)).replaceAll('{main}', String(main)))
      return ['haproxy', ['-f', file, '-db']]
    }
    case 'none':
      throw new Error('no proxy for direct')
  }
}

/** The processes of one setup, kept for every round of one scenario. */
interface Running {
  setup: Setup
  procs: Proc[]
  main: Server
  proxy: Proc | null
  /** Where the client connects. */
  target: number
}

/** Start the test servers and the proxy of one setup; resolves when all accept. */
async function startSetup (setup: Setup, scenario: Scenario): Promise<Running> {
  const procs: Proc[] = []
  const isBulk = scenario.bulkBytes !== undefined
  try {
    const mirrorMode = (k: MirrorKind): 'echo' | 'sink' | 'stall' => k === 'stall' ? 'stall' : isBulk ? 'sink' : 'echo'
    const [main, ...servers] = await Promise.all([
      startServer('main', isBulk ? 'sink' : 'echo', scenario.load).then((s) => { procs.push(s.proc); return s }),
      ...setup.mirrors.map(async (k, i) => k === 'refused'
        ? null
        : await startServer(`mirror${i}`, mirrorMode(k), scenario.load).then((s) => { procs.push(s.proc); return s }))
    ])
    // The proxy's port and the refused mirror's port (where nobody listens).
    const [listen, refused] = await freePorts(2)
    const mirrorPorts = servers.map((s) => s?.port ?? refused!)
    let proxy: Proc | null = null
    if (setup.proxy !== 'none') {
      const [cmd, args] = proxyCommand(setup, listen!, main!.port, mirrorPorts)
      proxy = startPinned(setup.proxy, proxyCpus, cmd, args)
      procs.push(proxy)
      await waitForPort(proxy, listen!, READY_MS)
      // A proxy that failed to bind must not let the client measure whoever else answers on that port.
      if (proxy.exitCode !== undefined) throw new Error(`${setup.name}: proxy exited with ${proxy.exitCode}: ${proxy.stderr.trim()}`)
    }
    return { setup, procs, main: main!, proxy, target: proxy === null ? main!.port : listen! }
  } catch (err) {
    await Promise.all(procs.map(kill))
    throw err
  }
}

/**
 * One run of goduplicator's own test client (`-a -p -s`; it prints "N req/sec" each second on stderr and runs until
 * SIGINT). The first lines are the warm-up; the proxy's CPU is read at the line that ends it and at the last line of
 * the window, and the window's requests are the sum of the lines in between. It measures no latency.
 */
async function measureGo (running: Running, scenario: Scenario, roundNo: number): Promise<RunRecord> {
  const { setup, main, proxy } = running
  const record: RunRecord = {
    scenario: scenario.name, setup: setup.name, round: roundNo, status: 'failed', note: null,
    client: null, wallSec: 0, proxy: null, mainServerCpuSec: 0
  }
  const proxyPids = proxy === null ? [] : processTree(proxy.pid)
  const warmupLines = Math.max(1, Math.ceil(timing.warmupMs / 1000))
  const windowLines = Math.max(1, Math.round(scenario.durationMs / 1000))
  const cutOffs0 = proxy?.mirrorCutOffs ?? 0
  const client = startPinned('go-client', loadCpus, peerBin.goClient!, ['-a', `127.0.0.1:${running.target}`, '-p', String(scenario.parallel), '-s', String(scenario.size)])
  const perSecond: number[] = []
  let cpu0 = 0; let cpu1 = 0; let main0 = 0; let t0 = 0; let t1 = 0; let sys0 = 0; let sys1 = 0
  const windowDone = new Promise<void>((resolve) => {
    client.onStderrLine.push((line) => {
      const m = / (\d+) req\/sec$/.exec(line)
      if (m === null) return
      perSecond.push(Number(m[1]))
      if (perSecond.length === warmupLines) { cpu0 = treeCpuSeconds(proxyPids); sys0 = treeIoSyscalls(proxyPids); main0 = cpuSeconds(main.proc.pid); t0 = performance.now() }
      if (perSecond.length === warmupLines + windowLines) { cpu1 = treeCpuSeconds(proxyPids); sys1 = treeIoSyscalls(proxyPids); record.mainServerCpuSec = cpuSeconds(main.proc.pid) - main0; t1 = performance.now(); resolve() }
    })
  })
  const limit = (warmupLines + windowLines) * 1000 + 10_000
  const timedOut = await Promise.race([windowDone.then(() => false), client.exited.then(() => true), new Promise<boolean>((resolve) => { setTimeout(() => resolve(true), limit).unref() })])
  const clientCpu = cpuSeconds(client.pid)
  client.child.kill('SIGINT')
  const killed = await waitOrKill(client, timing.graceMs + 3000)
  const window = perSecond.slice(warmupLines, warmupLines + windowLines)
  const windowRequests = window.reduce((a, b) => a + b, 0)
  record.wallSec = (t1 - t0) / 1000
  if (proxy !== null) {
    record.proxy = {
      pids: proxyPids,
      cpuSec: Number((cpu1 - cpu0).toFixed(3)),
      windowCpuSec: Number((cpu1 - cpu0).toFixed(3)),
      windowSec: Number(record.wallSec.toFixed(3)),
      windowIoSyscalls: sys1 - sys0,
      peakRssKiB: proxyPids.reduce((n, pid) => n + peakRssKiB(pid), 0),
      mirrorCutOffs: proxy.mirrorCutOffs - cutOffs0
    }
  }
  if (timedOut || window.length < windowLines) {
    record.status = 'stalled'
    record.note = `go client: ${window.length}/${windowLines} measured seconds${client.exitCode !== undefined && client.exitCode !== null && client.exitCode !== 0 ? `, exited ${client.exitCode}: ${client.stderr.trim().split('\n').pop() ?? ''}` : ''}`
    return record
  }
  const nan = Number.NaN
  record.client = {
    mode: 'pingpong', host: '127.0.0.1', port: running.target, parallel: scenario.parallel, size: scenario.size,
    durationMs: windowLines * 1000, warmupMs: warmupLines * 1000, elapsedMs: windowLines * 1000,
    requests: windowRequests, windowRequests, reqPerSec: Math.round(windowRequests / windowLines),
    latencyMs: { p50: nan, p90: nan, p99: nan, max: nan, mean: nan },
    // The Go client exits with log.Fatalf on any error; after SIGINT it exits 0.
    errors: killed || (client.exitCode !== 0 && client.exitCode !== null) ? 1 : 0,
    errorsByKind: { connect: 0, mismatch: 0, closed: 0, socket: 0, unanswered: 0 },
    bulk: null,
    cpu: { userMs: Math.round(clientCpu * 1000), systemMs: 0 }
  }
  record.status = record.client.errors > 0 ? 'errors' : proxy !== null && proxy.exitCode !== undefined ? 'failed' : 'ok'
  return record
}

/** One measured client run against a started setup. */
async function measure (running: Running, scenario: Scenario, roundNo: number): Promise<RunRecord> {
  if (scenario.load === 'go') return await measureGo(running, scenario, roundNo)
  const { setup, main, proxy } = running
  const isBulk = scenario.bulkBytes !== undefined
  const record: RunRecord = {
    scenario: scenario.name, setup: setup.name, round: roundNo, status: 'failed', note: null,
    client: null, wallSec: 0, proxy: null, mainServerCpuSec: 0
  }
  const proxyPids = proxy === null ? [] : processTree(proxy.pid)
  const proxyCpu0 = treeCpuSeconds(proxyPids)
  const cutOffs0 = proxy?.mirrorCutOffs ?? 0
  const mainCpu0 = cpuSeconds(main.proc.pid)
  const t0 = performance.now()

  const clientArgs = [bin.client, '-a', `127.0.0.1:${running.target}`, '-p', String(scenario.parallel), '-s', String(scenario.size),
    '--duration', `${scenario.durationMs}ms`, '--grace', `${timing.graceMs}ms`, '--json', '-q']
  if (isBulk) clientArgs.push('--bulk', String(scenario.bulkBytes), '--stall-timeout', `${timing.stallTimeoutMs}ms`)
  else clientArgs.push('--warmup', `${timing.warmupMs}ms`)
  clientArgs.push('--mark-window')
  const client = startPinned('client', loadCpus, process.execPath, clientArgs)
  // The proxy's CPU over exactly the client's measured window (not its warm-up, grace period or process start),
  // which is what the window's requests cost.
  const window: { cpu0?: number, cpu1?: number, t0?: number, t1?: number, sys0?: number, sys1?: number } = {}
  client.onStderrLine.push((line) => {
    if (line === 'window start') { window.t0 = performance.now(); window.cpu0 = treeCpuSeconds(proxyPids); window.sys0 = treeIoSyscalls(proxyPids) }
    if (line === 'window end') {
      const pids = [...new Set([...proxyPids, ...(proxy === null ? [] : processTree(proxy.pid))])]
      window.t1 = performance.now(); window.cpu1 = treeCpuSeconds(pids); window.sys1 = treeIoSyscalls(pids)
    }
  })
  // The client bounds itself; this is the backstop if it cannot.
  const killed = await waitOrKill(client, timing.warmupMs + scenario.durationMs + timing.graceMs + 10_000)

  record.wallSec = (performance.now() - t0) / 1000
  record.mainServerCpuSec = cpuSeconds(main.proc.pid) - mainCpu0
  if (proxy !== null) {
    const pids = [...new Set([...proxyPids, ...processTree(proxy.pid)])]
    record.proxy = {
      pids,
      cpuSec: Number((treeCpuSeconds(pids) - proxyCpu0).toFixed(3)),
      windowCpuSec: window.cpu0 === undefined || window.cpu1 === undefined ? null : Number((window.cpu1 - window.cpu0).toFixed(3)),
      windowSec: window.t0 === undefined || window.t1 === undefined ? null : Number(((window.t1 - window.t0) / 1000).toFixed(3)),
      windowIoSyscalls: window.sys0 === undefined || window.sys1 === undefined ? null : window.sys1 - window.sys0,
      peakRssKiB: pids.reduce((n, pid) => n + peakRssKiB(pid), 0),
      mirrorCutOffs: proxy.mirrorCutOffs - cutOffs0
    }
    if (proxy.exitCode !== undefined) record.note = `proxy exited with ${proxy.exitCode}`
  }
  if (killed) {
    record.status = 'stalled'
    record.note = 'client killed at the time limit'
    return record
  }
  try {
    record.client = JSON.parse(client.stdout) as LoadSummary
  } catch {
    record.note = `no client summary: ${client.stderr.trim().split('\n').pop() ?? ''}`
    return record
  }
  const c = record.client
  let status: RunStatus = 'ok'
  if (c.bulk?.stalled === true || c.errorsByKind.unanswered > 0) status = 'stalled'
  else if (c.errors > 0) status = 'errors'
  // The proxy died during the run: whatever the client measured, it was not the proxy.
  if (proxy !== null && proxy.exitCode !== undefined) status = 'failed'
  record.status = status
  return record
}

function throughputOf (r: RunRecord): number {
  return r.client === null ? 0 : r.client.bulk !== null ? r.client.bulk.mbPerSec : r.client.reqPerSec
}

const startedAt = new Date()
const haveTcptee = await import('node:fs').then((fs) => fs.existsSync(bin.tcptee))
const skipped: string[] = []
if (!haveTcptee) {
  skipped.push(...setups.filter((s) => s.proxy === 'tcptee').map((s) => s.name))
  setups = setups.filter((s) => s.proxy !== 'tcptee')
  process.stderr.write(`bench: ${bin.tcptee} not built; skipping ${skipped.join(', ')}\n`)
}

process.stderr.write(`bench: ${mode} mode, ${timing.rounds} round(s), ${setups.length} setups x ${scenarios.length} scenarios\n`)
const runs: RunRecord[] = []
function log (rec: RunRecord, unit: string): void {
  process.stderr.write(`  ${rec.scenario} round ${rec.round} ${rec.setup}: ${rec.status} ${throughputOf(rec)} ${unit}` +
    `${rec.client !== null && rec.client.errors > 0 ? `, ${rec.client.errors} errors` : ''}${rec.note === null ? '' : ` (${rec.note})`}\n`)
}
for (const scenario of scenarios) {
  const unit = scenario.bulkBytes !== undefined ? 'MB/s' : 'req/s'
  // Every setup's processes stay up for all rounds of the scenario (idle ones
  // use no CPU), so rounds can interleave without paying for process starts.
  const started = await Promise.all(setups.map(async (setup) => {
    try {
      return await startSetup(setup, scenario)
    } catch (err) {
      return { setup, error: (err as Error).message }
    }
  }))
  try {
    for (let r = 1; r <= timing.rounds; r++) {
      for (const s of started) {
        const rec: RunRecord = 'error' in s
          ? { scenario: scenario.name, setup: s.setup.name, round: r, status: 'failed', note: s.error, client: null, wallSec: 0, proxy: null, mainServerCpuSec: 0 }
          : await measure(s, scenario, r)
        runs.push(rec)
        log(rec, unit)
      }
    }
  } finally {
    await Promise.all(started.flatMap((s) => 'error' in s ? [] : s.procs.map(kill)))
  }
}

// Whatever is still running (a server that was still starting when its setup gave up) goes now.
await Promise.all([...runningProcs].map(kill))

const results: SetupResult[] = []
for (const scenario of scenarios) {
  const ofScenario = runs.filter((r) => r.scenario === scenario.name)
  const direct = aggregate(ofScenario.filter((r) => r.setup === 'direct'), null)
  const directThroughput = direct.reqPerSec ?? direct.mbPerSec
  for (const setup of setups) results.push(aggregate(ofScenario.filter((r) => r.setup === setup.name), directThroughput))
}

const cpus = os.cpus()
const report = {
  meta: {
    startedAt: startedAt.toISOString(),
    finishedAt: new Date().toISOString(),
    mode,
    argv: process.argv.slice(2),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpus: `${cpus.length} x ${cpus[0]?.model ?? 'unknown'}`,
    memoryGiB: Number((os.totalmem() / 1024 ** 3).toFixed(1)),
    timing,
    tcpteeArgs,
    proxyCpus: proxyCpus ?? null,
    loadCpus: loadCpus ?? null,
    peers: Object.fromEntries(peers),
    skipped,
    notes: [
      'Every process is a separate `node` (or peer binary) on 127.0.0.1; all share this machine\'s CPUs.',
      'Ping-pong: the client warms up (timing.warmupMs, not measured) before each measured run.',
      'Throughput: median over rounds; a run whose client was killed counts as 0.',
      'Bulk MB/s counts bytes main confirmed by its FIN after reading everything, over the time to that FIN.',
      'Proxy CPU: utime+stime of the proxy process tree from /proc, read when the client prints "window start" and "window end" (its measured window, without warm-up and grace period); per 100k requests it divides by the requests completed in that window, utilisation by the window\'s length.',
      'Client CPU: process.cpuUsage() reported by the client for its run (excludes node start-up).',
      'Proxy peak RSS: VmHWM summed over the proxy process tree; the proxy serves every round of a scenario, so this is its peak so far.',
      'Per scenario, every setup\'s servers and proxy are started once and serve all rounds; each client run is a new process.'
    ]
  },
  scenarios,
  results,
  runs
}

// Every run goes to bench/results/runs/ (ignored by git): a fresh clone stays clean after `npm run bench`. Only
// `--save` (`npm run bench:save`) replaces the committed bench/results/latest.json, the run the docs quote.
const outDir = argv['out-dir'] ?? join(repo, 'bench', 'results', 'runs')
mkdirSync(outDir, { recursive: true })
const stamp = startedAt.toISOString().replace(/[:.]/g, '-')
const json = JSON.stringify(report, null, 2) + '\n'
writeFileSync(join(outDir, `${stamp}.json`), json)
writeFileSync(join(outDir, 'latest.json'), json)
const committed = join(repo, 'bench', 'results', 'latest.json')
if (argv.save) writeFileSync(committed, json)

const lines = [`# tcptee bench (${mode}, ${timing.rounds} round(s), median) — ${report.meta.cpus}, node ${process.version}`, '']
for (const scenario of scenarios) {
  lines.push(`## ${scenario.name}: ${scenario.description}`, '', table(results.filter((r) => r.scenario === scenario.name)), '')
}
if (skipped.length > 0) lines.push(`Skipped (dist/cmd/tcptee.js not built): ${skipped.join(', ')}`, '')
lines.push(`JSON: ${join(outDir, `${stamp}.json`)}${argv.save ? ` and ${committed} (--save)` : ' (bench/results/latest.json unchanged; --save replaces it)'}`)
process.stdout.write(lines.join('\n') + '\n')
