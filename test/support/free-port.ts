import net from 'node:net'
import { once } from 'node:events'

/**
 * Asks the kernel for a free loopback TCP port by binding port 0 and closing again.
 * For servers that must be told their port on the command line (redis-server, mariadbd, postgres).
 * Another process could take the port between close and the server's bind; the server start
 * helpers notice that as an early exit and retry with a new port.
 */
export async function freePort (host = '127.0.0.1'): Promise<number> {
  const server = net.createServer()
  server.listen(0, host)
  await once(server, 'listening')
  const address = server.address()
  server.close()
  await once(server, 'close')
  if (address === null || typeof address === 'string') throw new Error('free-port: no TCP address')
  return address.port
}
