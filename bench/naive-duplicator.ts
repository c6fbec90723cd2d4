// The naive duplicator the benchmark compares against: agnoster/duplicator's
// approach, `client.pipe()` into main and into the mirror. pipe() pauses the
// client whenever ANY destination is full, and nobody reads the mirror's
// replies, so an echoing or stalled mirror eventually stalls the main path.
// Kept deliberately naive; do not fix it.
// Usage: node dist/bench/naive-duplicator.js -l <port> -f <port> -m <port>
import net from 'node:net'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { l: { type: 'string' }, f: { type: 'string' }, m: { type: 'string' } } })
const [listen, main, mirror] = [values.l, values.f, values.m].map(Number)

// Two departures from agnoster, both to keep the comparison about queueing:
// allowHalfOpen, so the client's FIN reaches main before the client sees a FIN
// back (else bulk uploads would look complete too early), and noDelay, as tcptee.
net.createServer({ allowHalfOpen: true, noDelay: true }, (client) => {
  const up = net.connect({ port: main!, host: '127.0.0.1', noDelay: true })
  const dup = net.connect({ port: mirror!, host: '127.0.0.1', noDelay: true })
  client.pipe(up)
  client.pipe(dup) // replies from the mirror are never read
  up.pipe(client)
  const destroy = (): void => { client.destroy(); up.destroy() }
  client.on('error', destroy)
  up.on('error', destroy)
  dup.on('error', () => {}) // a dead mirror is ignored (pipe unpipes it)
}).listen(listen!, '127.0.0.1', () => { process.stdout.write(`listening on 127.0.0.1:${listen}\n`) })
