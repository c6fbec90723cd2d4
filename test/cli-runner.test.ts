// The CLI's runners own their resources: close() releases every one of them. Regression: the admin server the CLI
// created was never closed, and neither was anything else but the duplicator (the process exited around them).
import t from 'tap'
import { connect } from 'node:net'
import { SingleRunner } from '../cmd/tcptee/single.js'
import type { CliOptions } from '../cmd/tcptee/args.js'
import { silentLogger } from '../src/index.js'
import { call } from './support/admin-http.js'
import { freePort, startPeer } from './helpers.js'

function refused (port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect({ port, host: '127.0.0.1' })
    s.once('connect', () => { s.destroy(); resolve(false) })
    s.once('error', (err: NodeJS.ErrnoException) => { resolve(err.code === 'ECONNREFUSED') })
  })
}

t.test('SingleRunner.close(): the duplicator, the admin server and the signal handlers are released', async (t) => {
  const main = await startPeer(t, 'echo')
  const adminPort = await freePort()
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const
  const before = signals.map((s) => process.listenerCount(s))
  const exits: number[] = []
  const opts: CliOptions = {
    listen: '127.0.0.1:0', main: `127.0.0.1:${main.port}`, admin: `127.0.0.1:${adminPort}`, workers: 1, logLevel: 'silent', logFormat: 'json',
    adminAuthFile: undefined, config: undefined,
  }
  const runner = await SingleRunner.start(opts, silentLogger(), { load: async () => opts, exit: (code) => { exits.push(code) } })
  t.teardown(() => runner.close(0))
  t.same(signals.map((s) => process.listenerCount(s)), before.map((n) => n + 1), 'one handler per signal while running')
  t.equal((await call(adminPort, '/healthz')).status, 200, 'admin endpoint up')
  const port = runner.duplicator.address()!.port

  await runner.close()
  t.ok(await refused(adminPort), 'admin port closed')
  t.ok(await refused(port), 'data port closed')
  t.same(signals.map((s) => process.listenerCount(s)), before, 'signal handlers removed')
  t.equal(runner.close(), runner.close(), 'close() is idempotent')
  t.same(exits, [], 'close() does not exit the process; the signal handler does')
})
