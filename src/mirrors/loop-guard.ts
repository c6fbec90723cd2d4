/**
 * Mirror loops: a mirror that is tcptee itself (its listen or admin address) or main, found by resolved address; and,
 * at run time, a client that is one of this process's own mirror connections, found by its `address:port`.
 */
import { lookup } from 'node:dns/promises'
import { isIP, type Socket } from 'node:net'
import { networkInterfaces } from 'node:os'
import { formatAddress, type Address } from '../net/address.js'
import { ConfigError, type OptionNamer } from '../ops/errors.js'
import { flagName } from '../options.js'

/** An IP in one spelling: IPv4-mapped IPv6 (`::ffff:127.0.0.1`) becomes IPv4, IPv6 is lower case. */
export function normalizeIp (ip: string): string {
  const lower = ip.toLowerCase()
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(lower)
  return mapped === null ? lower : mapped[1]!
}

function isLoopback (ip: string): boolean {
  return ip === '::1' || /^127\./.test(ip)
}

/** Whether `ip` (normalised) is an address of this host: any loopback address, or one of its interfaces. */
function isLocalIp (ip: string): boolean {
  if (isLoopback(ip)) return true
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (normalizeIp(a.address) === ip) return true
  }
  return false
}

function isWildcard (ip: string): boolean {
  return ip === '0.0.0.0' || ip === '::'
}

/**
 * The IPs `host` stands for without asking DNS: an IP literal (normalised), `localhost` (RFC 6761: loopback); undefined
 * for any other name.
 */
function literalIps (host: string): string[] | undefined {
  if (isIP(host) !== 0) return [normalizeIp(host)]
  if (host.toLowerCase() === 'localhost') return ['127.0.0.1', '::1']
  return undefined
}

/** Every IP `host` resolves to (dns.lookup with all: true), normalised. A name that does not resolve gives []. */
export async function resolveIps (host: string): Promise<string[]> {
  const literal = isIP(host) !== 0 ? [normalizeIp(host)] : undefined
  if (literal !== undefined) return literal
  try {
    const found = await lookup(host, { all: true })
    const ips = found.map((a) => normalizeIp(a.address))
    if (host.toLowerCase() === 'localhost') ips.push('127.0.0.1', '::1')
    return ips
  } catch {
    return literalIps(host) ?? []
  }
}

/** One endpoint a mirror must not be: resolved IPs (a wildcard listen address stands for every local IP) and a port. */
interface OwnEndpoint {
  readonly ips: readonly string[]
  readonly port: number
  /** How the refusal names it: `tcptee's own listen address`, `the main server`. */
  readonly what: string
}

/**
 * The endpoints of one duplicator that a mirror must not resolve to, built once it listens (then the bound port and the
 * resolved names are known). Checks are by resolved IP and port.
 */
export class OwnEndpoints {
  private readonly endpoints: OwnEndpoint[]

  private constructor (endpoints: OwnEndpoint[]) {
    this.endpoints = endpoints
  }

  /** Resolves `listen` (the bound address), `main` and, when known with a fixed port, the admin address. */
  static async resolve (listen: Address, main: Address, admin: Address | undefined): Promise<OwnEndpoints> {
    const list: Array<[Address, string]> = [[listen, "tcptee's own listen address"], [main, 'the main server']]
    if (admin !== undefined && admin.port !== 0) list.push([admin, "tcptee's own admin address"])
    const endpoints = await Promise.all(list.map(async ([a, what]) => ({ ips: await resolveIps(a.host), port: a.port, what })))
    return new OwnEndpoints(endpoints)
  }

  /** What `ips:port` is of ours (see {@link OwnEndpoint.what}), or undefined. */
  match (ips: readonly string[], port: number): string | undefined {
    for (const e of this.endpoints) {
      if (e.port !== port) continue
      for (const own of e.ips) {
        if (isWildcard(own) ? ips.some(isLocalIp) : ips.includes(own)) return e.what
      }
    }
    return undefined
  }

  /** Throws ConfigError (naming `key`) when the mirror `address` resolves to one of ours. */
  async check (address: Address, key: string): Promise<void> {
    this.refuse(address, await resolveIps(address.host), key)
  }

  /**
   * The same check without DNS, for addMirror, which is synchronous: IP literals and `localhost` only. Returns false
   * when the host is a name that must be resolved ({@link OwnEndpoints.check}).
   */
  checkSync (address: Address, key: string): boolean {
    const ips = literalIps(address.host)
    if (ips === undefined) return false
    this.refuse(address, ips, key)
    return true
  }

  private refuse (address: Address, ips: readonly string[], key: string): void {
    const what = this.match(ips, address.port)
    if (what === undefined) return
    const text = (n: OptionNamer): string => `${n(key)}: mirror ${formatAddress(address)} is ${what}`
    throw new ConfigError(text(String), flagName(key), { key, render: text })
  }
}

/**
 * Whether two targets are the same endpoint as far as can be told without DNS (IP literals normalised, `localhost` is
 * loopback): for the synchronous "a mirror is not main" check.
 */
export function sameEndpoint (a: Address, b: Address): boolean {
  if (a.port !== b.port) return false
  const ia = literalIps(a.host)
  const ib = literalIps(b.host)
  if (ia === undefined || ib === undefined) return a.host.toLowerCase() === b.host.toLowerCase()
  return ia.some((ip) => ib.includes(ip))
}

// ---- the run-time detector: this process's open mirror connections, by their local address:port ----------------

/**
 * Both ends of every mirror socket of this process whose ends are known (`local|remote`) → the mirror's name. Both
 * ends, not the local one alone: Linux gives the same ephemeral port to connections to different destinations, so a
 * client of ours may well come from the port one of our mirror sockets uses towards another server.
 */
const mirrorEnds = new Map<string, string>()
/** Mirror sockets of this process still connecting whose ends are not known yet (a host name being resolved). */
let unknownEnds = 0

function endKey (address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined || port === undefined || port === 0) return undefined
  return `${normalizeIp(address)}:${port}`
}

function pairKey (local: string | undefined, remote: string | undefined): string | undefined {
  return local === undefined || remote === undefined ? undefined : `${local}|${remote}`
}

function noop (): void {}

/** Records a mirror socket that was just dialled to `target`, from the moment its ends are known until it closes. */
export function trackMirrorSocket (socket: Socket, mirror: string, target: Address): void {
  let key: string | undefined
  unknownEnds++
  const literal = isIP(target.host) !== 0 ? target.host : undefined
  const record = (): void => {
    if (key !== undefined || socket.destroyed) return
    key = pairKey(endKey(socket.localAddress, socket.localPort), endKey(socket.remoteAddress ?? literal, socket.remotePort ?? target.port))
    if (key === undefined) return
    unknownEnds--
    mirrorEnds.set(key, mirror)
  }
  // To an IP: connect() issued the connect syscall in a tick it queued before this one, so the local port is bound
  // now, before the server side can accept. To a host name: not until the name is resolved, so again on 'connect'.
  process.nextTick(record)
  socket.once('connect', record)
  socket.once('close', () => {
    socket.off('connect', record)
    if (key === undefined) unknownEnds--
    else if (mirrorEnds.get(key) === mirror) mirrorEnds.delete(key)
  })
}

/** The mirror whose connection of ours this accepted socket is (its two ends are our mirror socket's, swapped). */
function mirrorConnectionFrom (socket: Socket): string | undefined {
  const key = pairKey(endKey(socket.remoteAddress, socket.remotePort), endKey(socket.localAddress, socket.localPort))
  return key === undefined ? undefined : mirrorEnds.get(key)
}

/**
 * Calls `onLoop` when the accepted `socket` is one of this process's own mirror connections, else `onClient`. At once,
 * unless the client is local and a mirror socket of ours is still connecting with its local end unknown: its 'connect'
 * may come in this same turn of the event loop, after the accept, so the answer waits one turn. A socket that closes
 * meanwhile gets neither call.
 */
export function afterLoopCheck (socket: Socket, onClient: (socket: Socket) => void, onLoop: (socket: Socket, mirror: string) => void): void {
  const mirror = mirrorConnectionFrom(socket)
  if (mirror !== undefined) return onLoop(socket, mirror)
  if (unknownEnds === 0 || socket.remoteAddress === undefined || !isLocalIp(normalizeIp(socket.remoteAddress))) return onClient(socket)
  socket.on('error', noop)
  setImmediate(() => {
    socket.off('error', noop)
    if (socket.destroyed) return
    const later = mirrorConnectionFrom(socket)
    if (later !== undefined) onLoop(socket, later)
    else onClient(socket)
  })
}
