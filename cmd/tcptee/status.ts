/**
 * `tcptee status --admin HOST:PORT [--auth-file FILE] [--watch [SECONDS]] [--json]`: reads `GET /status` from a
 * running tcptee's admin endpoint and prints it as a table (src/ops/status-table.ts); `--watch` refreshes it.
 * `--healthz` only asks `GET /healthz` and prints nothing: exit 0 when healthy (a container HEALTHCHECK).
 * Without flags, `--admin` and `--auth-file` come from `TCPTEE_ADMIN` and `TCPTEE_ADMIN_AUTH_FILE`, the variables the
 * running tcptee reads, so inside its container `tcptee status` needs no arguments.
 */
import yargs from 'yargs'
import { readAuthFile } from '../../src/ops/admin.js'
import { ConfigError, StatusReadError } from '../../src/ops/errors.js'
import { formatAddress, parseAddress } from '../../src/net/address.js'
import type { StatusOverview } from '../../src/ops/status-feed.js'
import { renderStatusTable } from '../../src/ops/status-table.js'
import { strictFail } from './args.js'

export async function run (argv: readonly string[]): Promise<void> {
  const a = await yargs([...argv])
    .scriptName('tcptee status')
    .locale('en') // not the language of LANG: our own messages are English
    .usage('$0 --admin HOST:PORT [--auth-file FILE] [--watch [SECONDS]]\n\nPrint the status of a running tcptee from its admin endpoint.')
    .option('admin', { type: 'string', describe: 'the admin endpoint (tcptee --admin) to read', demandOption: false })
    .option('auth-file', { type: 'string', describe: 'file holding user:password (the --admin-auth-file of the running tcptee)' })
    .option('watch', { type: 'number', describe: 'refresh every SECONDS (default 2) until interrupted' })
    .option('json', { type: 'boolean', describe: 'print the raw overview as JSON' })
    .option('healthz', { type: 'boolean', describe: 'only check GET /healthz: exit 0 if healthy, 1 if not; prints nothing' })
    .strict().help().version(false).exitProcess(false)
    .fail(strictFail)
    .parse()
  if (a['help'] === true) return
  const admin = a.admin ?? process.env['TCPTEE_ADMIN']
  if (admin === undefined || admin === '') throw new ConfigError('--admin is required: the admin endpoint to read, e.g. --admin 127.0.0.1:9900', '--admin')
  const listen = parseAddress(admin, '--admin', '127.0.0.1', false)
  // An endpoint listening on every address (0.0.0.0, ::) is reached on loopback.
  const addr = listen.host === '0.0.0.0' || listen.host === '::' ? { ...listen, host: listen.host === '::' ? '::1' : '127.0.0.1' } : listen
  const authFile = a['auth-file'] ?? process.env['TCPTEE_ADMIN_AUTH_FILE']
  const creds = authFile === undefined || authFile === '' ? undefined : readCredentials(authFile)
  const watch = a.watch === undefined ? undefined : (Number.isNaN(a.watch) || a.watch <= 0 ? 2 : a.watch)
  const url = `http://${formatAddress(addr)}/${a.healthz === true ? 'healthz' : 'status'}`
  const headers: Record<string, string> = creds === undefined ? {} : { authorization: 'Basic ' + Buffer.from(`${creds.user}:${creds.password}`).toString('base64') }

  const read = async (): Promise<StatusOverview> => {
    let res: Response
    try {
      res = await fetch(url, { headers, signal: AbortSignal.timeout(10_000) })
    } catch (err) {
      const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as Error).message
      throw new StatusReadError(`cannot read ${url}: ${cause}`, { cause: err })
    }
    const text = await res.text()
    if (res.status === 401) throw new StatusReadError(`${url} answered 401: ${creds === undefined ? 'it needs credentials; give --auth-file' : 'wrong user or password in --auth-file'}`)
    if (res.status !== 200) throw new StatusReadError(`${url} answered ${res.status}: ${text.trim().slice(0, 200)}`)
    return JSON.parse(text) as StatusOverview
  }

  if (a.healthz === true) {
    await read()
    return
  }
  let previous = await read()
  if (watch === undefined) {
    process.stdout.write(a.json === true ? JSON.stringify(previous, null, 2) + '\n' : renderStatusTable(previous))
    return
  }
  const clear = process.stdout.isTTY ? '\x1b[H\x1b[2J' : ''
  process.stdout.write(clear + renderStatusTable(previous))
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, watch * 1000))
    const now = await read()
    process.stdout.write(clear + (a.json === true ? JSON.stringify(now) + '\n' : renderStatusTable(now, previous)))
    previous = now
  }
}

/** The same file format as the running tcptee's `--admin-auth-file`; errors name this command's flag. */
function readCredentials (file: string): ReturnType<typeof readAuthFile> {
  try {
    return readAuthFile(file)
  } catch (err) {
    if (err instanceof ConfigError) throw new ConfigError(err.message.replace(/^--admin-auth-file/, '--auth-file'), '--auth-file', { cause: err })
    throw err
  }
}
