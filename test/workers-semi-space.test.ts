// With --workers N the primary starts each worker with a small V8 young generation (--max-semi-space-size, see
// WORKER_SEMI_SPACE_MIB in cmd/tcptee/primary.ts), unless the user chose a size on node's command line or in
// NODE_OPTIONS. Catches: the flag not reaching the workers (read from their /proc cmdline, the real processes), and a
// user's own size being overridden.
import { readFileSync } from 'node:fs'
import t from 'tap'
import { workerExecArgv, WORKER_SEMI_SPACE_MIB } from '../cmd/tcptee/primary.js'
import { freePort, startPeer, waitFor } from './helpers.js'
import { startCli } from './support/cli-process.js'

const FLAG = `--max-semi-space-size=${WORKER_SEMI_SPACE_MIB}`

t.test('workerExecArgv adds the size only when none was chosen', async (t) => {
  t.same(workerExecArgv([], undefined), [FLAG])
  t.same(workerExecArgv(['--enable-source-maps'], ''), ['--enable-source-maps', FLAG])
  t.same(workerExecArgv(['--max-semi-space-size=8'], undefined), ['--max-semi-space-size=8'], 'node command line')
  t.same(workerExecArgv([], '--max-old-space-size=100 --max_semi_space_size=4'), [], 'NODE_OPTIONS, underscores')
  t.same(workerExecArgv([], '"--max-semi-space-size=4" "--import=x.mjs"'), [], 'NODE_OPTIONS, quoted')
  t.same(workerExecArgv([], '--max-old-space-size=100'), [FLAG], 'another size only')
})

/** The pids of `pid`'s child processes (Linux). */
function children (pid: number): number[] {
  return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter((s) => s !== '').map(Number)
}

function cmdline (pid: number): string[] {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter((s) => s !== '')
}

for (const nodeOptions of [undefined, '--max-semi-space-size=4']) {
  t.test(`the workers' command line (NODE_OPTIONS ${nodeOptions ?? 'unset'})`, async (t) => {
    const main = await startPeer(t, 'echo')
    const port = await freePort()
    const env = { ...process.env }
    if (nodeOptions === undefined) delete env['NODE_OPTIONS']
    else env['NODE_OPTIONS'] = nodeOptions
    const cli = startCli(t, ['-l', `127.0.0.1:${port}`, '-f', `127.0.0.1:${main.port}`, '--workers', '2'], env)
    await cli.line('listening', { n: 1 })
    const workers = await waitFor('two workers', () => { const c = children(cli.child.pid!); return c.length === 2 ? c : undefined }, { timeoutMs: 10_000 })
    for (const pid of workers) {
      const args = cmdline(pid)
      if (nodeOptions === undefined) t.ok(args.includes(FLAG), `worker ${pid} runs with ${FLAG}: ${args.join(' ')}`)
      else t.notOk(args.some((a) => a.startsWith('--max-semi-space-size')), `worker ${pid} keeps the user's size: ${args.join(' ')}`)
    }
    t.notOk(cmdline(cli.child.pid!).includes(FLAG), 'the primary itself is not restarted with it')
    cli.child.kill('SIGTERM')
    const { code } = await cli.exited
    t.equal(code, 0, 'clean exit')
  })
}
