/**
 * `tcptee wrap [tcptee options] -- CMD ARGS...`: for platforms that hand an app a `$PORT` (Heroku, Cloud Foundry,
 * Render, ...). tcptee listens on `$PORT` (or `--port-env NAME`), starts the app with `PORT` set to a free loopback
 * port (and `$PORT` in its arguments replaced), waits until the app listens, then forwards every connection to it as
 * main and to the mirrors. SIGTERM/SIGINT go on to the app while tcptee drains; when the app exits, tcptee drains
 * and exits with the app's exit code. The app's output goes through unchanged (it inherits stdout and stderr).
 *
 * Owns the app, the duplicator, the admin server, the config watcher and the signal handlers.
 */
import { createServer } from 'node:net'
import type { Logger } from 'pino'
import { createDuplicator, type Duplicator } from '../../src/duplicator.js'
import type { AdminServer } from '../../src/ops/admin.js'
import { normalizeConfig } from '../../src/config.js'
import { loadFeatures } from '../../src/features.js'
import { loadAdmin } from './admin-loader.js'
import { ConfigError } from '../../src/ops/errors.js'
import type { FileWatcher } from '../../src/ops/file-watcher.js'
import { createLogger } from '../../src/ops/logger.js'
import { parseDuration } from '../../src/net/units.js'
import { describeExit, exitCodeOf, WrappedApp, type AppExit } from '../../src/ops/wrapped-app.js'
import { parseCli, type CliOptions } from './args.js'
import { reloadConfig, watchConfigFile } from './config-file.js'

const USAGE = 'usage: tcptee wrap [--port-env NAME] [--app-start-timeout DURATION] [tcptee options] -- CMD [ARGS...]'

/** The wrap-only flags, taken out of argv before the rest goes to the usual parser. */
interface WrapFlags {
  portEnv: string
  startTimeoutMs: number
  tcptee: string[]
  command: string
  args: string[]
}

export function parseWrapArgs (argv: readonly string[]): WrapFlags {
  const sep = argv.indexOf('--')
  if (sep < 0 || sep === argv.length - 1) throw new ConfigError(`wrap: the app's command goes after --; ${USAGE}`, undefined)
  const own: Record<string, string> = {}
  const tcptee: string[] = []
  const before = argv.slice(0, sep)
  for (let i = 0; i < before.length; i++) {
    const a = before[i]!
    const m = /^--(port-env|app-start-timeout)(?:=(.*))?$/.exec(a)
    if (m === null) {
      if (/^(-l|-f|--listen|--forward|--main)(=|$)/.test(a)) {
        throw new ConfigError(`wrap: ${a.split('=')[0]!} is not used: tcptee listens on $PORT and forwards to the app`, a.split('=')[0])
      }
      tcptee.push(a)
      continue
    }
    const value = m[2] ?? before[++i]
    if (value === undefined || value === '') throw new ConfigError(`--${m[1]!} needs a value`, `--${m[1]!}`)
    own[m[1]!] = value
  }
  const portEnv = own['port-env'] ?? 'PORT'
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(portEnv)) throw new ConfigError(`--port-env: "${portEnv}" is not an environment variable name`, '--port-env')
  return {
    portEnv,
    startTimeoutMs: parseDuration(own['app-start-timeout'] ?? '60s', '--app-start-timeout'),
    tcptee,
    command: argv[sep + 1]!,
    args: argv.slice(sep + 2),
  }
}

/** A free port on 127.0.0.1 for the app (closed again at once; the app binds it next). */
function freeLoopbackPort (): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

export async function run (argv: readonly string[]): Promise<void> {
  const sep = argv.indexOf('--')
  if ((sep < 0 ? argv : argv.slice(0, sep)).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`${USAGE}\n\nRuns CMD with PORT set to a free loopback port, listens on $PORT (or --port-env NAME) and forwards to the\napp as main and to the mirrors. Every other tcptee option works as usual except -l, -f and --workers.\n`)
    return
  }
  const flags = parseWrapArgs(argv)
  const raw = process.env[flags.portEnv]
  if (raw === undefined || !/^\d+$/.test(raw) || Number(raw) < 1 || Number(raw) > 65535) {
    throw new ConfigError(`wrap: $${flags.portEnv} must hold the port to listen on (1-65535), got ${raw === undefined ? 'nothing' : JSON.stringify(raw)}`, '--port-env')
  }
  const appPort = await freeLoopbackPort()
  const fixed = { listen: `:${raw}`, main: `127.0.0.1:${appPort}` }
  const load = (): Promise<CliOptions> => parseCli(flags.tcptee, fixed)
  const opts = await load()
  if (opts.workers > 1) throw new ConfigError('--workers: tcptee wrap runs one process in front of one app; use --workers 1', '--workers')
  normalizeConfig(opts)
  const log = await createLogger({ level: opts.logLevel, format: opts.logFormat })
  await WrapRunner.start(opts, log, flags, appPort, load)
}

export class WrapRunner {
  private readonly app: WrappedApp
  private duplicator: Duplicator | undefined
  private admin: AdminServer | undefined
  private watcher: FileWatcher | undefined
  private signals = 0
  private ending: Promise<void> | undefined

  private constructor (private readonly opts: CliOptions, private readonly log: Logger, flags: WrapFlags, private readonly appPort: number,
    private readonly load: () => Promise<CliOptions>) {
    this.app = new WrappedApp({ command: flags.command, args: flags.args, port: appPort, portEnv: 'PORT', logger: log })
    this.log.info({ app: [flags.command, ...flags.args].join(' '), appPid: this.app.pid, appPort }, 'wrap: app started')
  }

  /** Starts the app, waits until it listens, then listens on $PORT. Exits the process when the app exits. */
  static async start (opts: CliOptions, log: Logger, flags: WrapFlags, appPort: number, load: () => Promise<CliOptions>): Promise<WrapRunner> {
    const r = new WrapRunner(opts, log, flags, appPort, load)
    process.on('SIGINT', r.processOnSignal)
    process.on('SIGTERM', r.processOnSignal)
    process.on('SIGHUP', r.processOnSighup)
    void r.app.exited.then(r.appOnExit)
    try {
      await r.app.waitListening(flags.startTimeoutMs)
    } catch (err) {
      if (r.app.done || r.signals > 0) return r // appOnExit ends the process with the app's code
      r.log.error({ err: (err as Error).message }, `wrap: ${(err as Error).message}; stopping the app`)
      r.app.signal('SIGTERM')
      return r
    }
    if (r.app.done || r.signals > 0) return r
    await loadFeatures(normalizeConfig(opts))
    const admin = await loadAdmin(opts)
    r.duplicator = createDuplicator({ ...opts, logger: log })
    const auth = opts.adminAuthFile === undefined ? undefined : admin!.readAuthFile(opts.adminAuthFile)
    r.admin = opts.admin === undefined ? undefined : admin!.createAdminServer({ listen: opts.admin, backend: r.duplicator, auth, logger: log, maxMirrorSeries: opts.metricsMaxMirrors })
    try {
      await r.duplicator.listen()
      await r.admin?.listen()
    } catch (err) {
      // Nothing can reach the app: stop it and exit 1 with the listen error's one line.
      r.log.error({ err: (err as Error).message }, 'wrap: cannot listen; stopping the app')
      r.app.signal('SIGTERM')
      await r.app.exited
      throw err
    }
    if (opts.config !== undefined) r.watcher = watchConfigFile(opts.config, r.fileOnChange, log)
    r.log.info({ appPort }, 'wrap: app is listening; forwarding')
    return r
  }

  /** First signal: pass it on to the app and stop accepting; the app's exit ends the process. Second: kill it all. */
  private readonly processOnSignal = (signal: NodeJS.Signals): void => {
    if (++this.signals > 1) {
      this.log.warn({ signal }, 'wrap: second signal: killing the app and exiting now')
      this.duplicator?.destroyAll()
      this.app.signal('SIGKILL')
      process.exit(1)
    }
    this.log.info({ signal, appPid: this.app.pid }, 'wrap: signal received: passed on to the app; draining connections')
    this.app.signal(signal)
    void this.drain()
  }

  private readonly processOnSighup = (): void => {
    if (this.duplicator !== undefined) void reloadConfig(this.duplicator, this.load, this.log, this.opts)
  }

  private readonly fileOnChange = (): Promise<boolean> => {
    if (this.duplicator === undefined) return Promise.resolve(false)
    return reloadConfig(this.duplicator, this.load, this.log, this.opts, 'config file changed')
  }

  /** Stops accepting and lets open connections finish (up to --shutdown-timeout). The same promise on every call. */
  private drain (): Promise<void> {
    this.ending ??= (async () => {
      this.watcher?.close()
      await this.duplicator?.close()
      await this.admin?.close()
    })()
    return this.ending
  }

  private readonly appOnExit = async (e: AppExit): Promise<void> => {
    const code = exitCodeOf(e)
    this.log.info({ code: e.code, signal: e.signal, exitCode: code }, `wrap: app exited (${describeExit(e)}); draining and exiting with ${code}`)
    await this.drain()
    process.off('SIGINT', this.processOnSignal)
    process.off('SIGTERM', this.processOnSignal)
    process.off('SIGHUP', this.processOnSighup)
    process.exit(code)
  }

  /** The app's loopback port (main). */
  get port (): number {
    return this.appPort
  }
}
