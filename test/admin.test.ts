// Admin endpoint: every route with and without auth, and malformed requests. A broken router, a missing auth check on
// one route, or an error answered as 500 / HTML instead of a JSON 4xx that says what is wrong fails here.
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createAdminServer, readAuthFile, type Duplicator } from '../src/index.js'
import { captureLogger, client, startDup, startPeer } from './helpers.js'
import type { Test } from 'tap'
import { call } from './support/admin-http.js'

async function setup (t: Test, auth?: { user: string; password: string }): Promise<{ dup: Duplicator; admin: number; mirror: string; main: string }> {
  const main = await startPeer(t, 'echo')
  const mirror = await startPeer(t, 'record')
  const { dup } = await startDup(t, main, [mirror])
  const server = createAdminServer({ listen: '127.0.0.1:0', backend: dup, auth })
  const { port } = await server.listen()
  t.teardown(() => server.close())
  return { dup, admin: port, mirror: `127.0.0.1:${mirror.port}`, main: `127.0.0.1:${main.port}` }
}

t.test('without auth: every endpoint answers', async (t) => {
  const { admin, mirror, dup } = await setup(t)
  const c = client(t, dup.address()!.port)
  await c.connected
  c.socket.end('hello')
  await c.ended

  const health = await call(admin, '/healthz')
  t.equal(health.status, 200)
  t.same(health.json(), { status: 'ok' })

  const list = await call(admin, '/mirrors')
  t.equal(list.status, 200)
  t.match(list.headers.get('content-type'), /application\/json/)
  const mirrors = list.json()['mirrors'] as Array<Record<string, unknown>>
  t.equal(mirrors.length, 1)
  t.match(mirrors[0], {
    address: mirror, origin: 'command-line', state: 'up', percent: 100, percentOverride: null,
    connections: 1, bytesSent: 5, overflows: 0, writeTimeouts: 0, connectFailures: 0, lastError: null,
  })
  t.type(mirrors[0]!['activeConnections'], 'number')

  const metrics = await call(admin, '/metrics')
  t.equal(metrics.status, 200)
  t.match(metrics.headers.get('content-type'), /text\/plain; version=0\.0\.4/)
  t.match(metrics.text, /^tcptee_connections_total 1$/m)
  t.match(metrics.text, /^tcptee_bytes_total\{direction="client_to_main"\} 5$/m)
  t.match(metrics.text, new RegExp(`^tcptee_mirror_bytes_sent_total\\{mirror="${mirror}"\\} 5$`, 'm'))
  t.match(metrics.text, new RegExp(`^tcptee_mirror_state\\{mirror="${mirror}",state="up"\\} 1$`, 'm'))
  t.match(metrics.text, /^tcptee_connection_duration_seconds_count 1$/m)
  t.match(metrics.text, /^process_cpu_user_seconds_total /m, 'process default metrics included')
})

t.test('malformed requests: 400/404/405 with a JSON error that says what is wrong', async (t) => {
  const { admin, main, mirror } = await setup(t)
  const cases: Array<[string, string, number, RegExp]> = [
    ['GET', '/nope', 404, /no such endpoint \/nope/],
    ['POST', '/mirrors', 405, /POST is not allowed on \/mirrors; allowed: GET, PUT, DELETE/],
    ['DELETE', '/metrics', 405, /DELETE is not allowed on \/metrics/],
    ['PUT', '/healthz', 405, /PUT is not allowed/],
    ['PUT', '/mirrors', 400, /missing query parameter addr=host:port/],
    ['PUT', '/mirrors?addr=', 400, /missing query parameter addr/],
    ['PUT', '/mirrors?addr=nohost', 400, /"nohost" is not an address/],
    ['PUT', '/mirrors?addr=127.0.0.1:99999', 400, /port 99999 .* out of range/],
    ['PUT', `/mirrors?addr=${main}`, 400, /is the main server/],
    ['PUT', '/mirrors?addr=127.0.0.1:1&percent=150', 400, /"150" is not a percentage/],
    ['PUT', '/mirrors?addr=127.0.0.1:1&percent=5&percent=6', 400, /percent given more than once/],
    ['PUT', '/mirrors?address=127.0.0.1:1', 400, /unknown query parameter "address"/],
    ['DELETE', '/mirrors', 400, /missing query parameter addr/],
    ['DELETE', '/mirrors?addr=127.0.0.1:1', 404, /not an active mirror: 127.0.0.1:1/],
    ['GET', '/mirrors?verbose=1', 400, /takes no query parameters/],
  ]
  for (const [method, path, status, re] of cases) {
    const r = await call(admin, path, { method })
    t.equal(r.status, status, `${method} ${path} -> ${status}`)
    t.match(r.headers.get('content-type'), /application\/json/)
    t.match(r.json()['error'], re, `${method} ${path}: ${r.text.trim()}`)
  }
  const allow = await call(admin, '/mirrors', { method: 'POST' })
  t.equal(allow.headers.get('allow'), 'GET, PUT, DELETE')
  // Nothing was changed by the rejected requests: a bad entry in a list rejects the whole list.
  const bad = await call(admin, '/mirrors?addr=127.0.0.1:2&addr=bad', { method: 'PUT' })
  t.equal(bad.status, 400)
  const list = (await call(admin, '/mirrors')).json()['mirrors'] as Array<{ address: string }>
  t.same(list.map((m) => m.address), [mirror], 'only the original mirror')
})

t.test('PUT is idempotent, sets a percentage, DELETE removes; the list shows origin and state', async (t) => {
  const { admin, mirror } = await setup(t)
  const put = await call(admin, '/mirrors?addr=127.0.0.1:7&addr=127.0.0.1:8,127.0.0.1:9', { method: 'PUT' })
  t.equal(put.status, 200)
  t.same(put.json()['added'], ['127.0.0.1:7', '127.0.0.1:8', '127.0.0.1:9'])
  const again = await call(admin, '/mirrors?addr=127.0.0.1:7&percent=25', { method: 'PUT' })
  t.same(again.json()['added'], [])
  t.same(again.json()['alreadyPresent'], ['127.0.0.1:7'])
  const pct = await call(admin, `/mirrors?addr=${encodeURIComponent('127.0.0.1:8@12.5%')}`, { method: 'PUT' })
  t.equal(pct.status, 200, 'the @n% syntax works in addr too')
  const del = await call(admin, '/mirrors?addr=127.0.0.1:9', { method: 'DELETE' })
  t.equal(del.status, 200)
  t.same(del.json()['removed'], ['127.0.0.1:9'])
  const list = (await call(admin, '/mirrors')).json()['mirrors'] as Array<Record<string, unknown>>
  t.same(list.map((m) => [m['address'], m['origin'], m['state'], m['percent'], m['percentOverride']]), [
    [mirror, 'command-line', 'up', 100, null],
    ['127.0.0.1:7', 'runtime', 'up', 25, 25],
    ['127.0.0.1:8', 'runtime', 'up', 12.5, 12.5],
    ['127.0.0.1:9', 'runtime', 'removed', 100, null],
  ])
  const back = await call(admin, '/mirrors?addr=127.0.0.1:9', { method: 'PUT' })
  t.same(back.json()['added'], ['127.0.0.1:9'], 'a removed mirror can be added again')
})

t.test('with auth: 401 without or with wrong credentials on every endpoint, 200 with the right ones', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-admin-'))
  const file = join(dir, 'auth')
  writeFileSync(file, 'ops:s3cr:et\n')
  const auth = readAuthFile(file)
  t.same(auth, { user: 'ops', password: 's3cr:et' }, 'the password may contain a colon')
  const { admin } = await setup(t, auth)
  const endpoints: Array<[string, string]> = [
    ['GET', '/healthz'], ['GET', '/mirrors'], ['GET', '/metrics'],
    ['PUT', '/mirrors?addr=127.0.0.1:7'], ['DELETE', '/mirrors?addr=127.0.0.1:7'], ['GET', '/nope'],
  ]
  for (const [method, path] of endpoints) {
    const none = await call(admin, path, { method })
    t.equal(none.status, 401, `${method} ${path} without credentials`)
    t.match(none.headers.get('www-authenticate'), /^Basic realm="tcptee admin"/)
    t.match(none.json()['error'], /authentication required/)
    const wrong = await call(admin, path, { method, auth: 'ops:wrong' })
    t.equal(wrong.status, 401, `${method} ${path} with a wrong password`)
    t.match(wrong.json()['error'], /wrong user or password/)
    t.equal((await call(admin, path, { method, auth: 'ops:s3cr:et:x' })).status, 401, 'a longer password is wrong too')
    t.equal((await call(admin, path, { method, header: 'Bearer abc' })).status, 401, 'not basic auth')
  }
  const expected: Record<string, number> = { '/nope': 404 }
  for (const [method, path] of endpoints) {
    const ok = await call(admin, path, { method, auth: 'ops:s3cr:et' })
    t.equal(ok.status, expected[path] ?? 200, `${method} ${path} with the right credentials`)
  }
})

t.test('auth file errors name the flag', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'tcptee-admin-'))
  t.throws(() => readAuthFile(join(dir, 'missing')), { code: 'TCPTEE_ERR_CONFIG', message: /--admin-auth-file: cannot read .*ENOENT/ })
  for (const bad of ['nocolon\n', ':password\n', 'user:\n', '\n']) {
    writeFileSync(join(dir, 'bad'), bad)
    t.throws(() => readAuthFile(join(dir, 'bad')), { message: /must hold user:password on its first line/ }, JSON.stringify(bad))
  }
})

t.test('binding to a non-loopback address without auth logs a warning; with auth it does not', async (t) => {
  const main = await startPeer(t, 'echo')
  const { dup } = await startDup(t, main, [])
  for (const auth of [undefined, { user: 'a', password: 'b' }]) {
    const { logger, lines } = captureLogger()
    const server = createAdminServer({ listen: '0.0.0.0:0', backend: dup, auth, logger, defaultMetrics: false })
    await server.listen()
    t.teardown(() => server.close())
    const warned = lines.filter((l) => /no auth/.test(String(l['msg'])))
    t.equal(warned.length, auth === undefined ? 1 : 0, auth === undefined ? 'warned once' : 'no warning with auth')
    await server.close()
  }
  const { logger, lines } = captureLogger()
  const local = createAdminServer({ listen: '127.0.0.1:0', backend: dup, logger, defaultMetrics: false })
  await local.listen()
  t.teardown(() => local.close())
  t.equal(lines.filter((l) => /no auth/.test(String(l['msg']))).length, 0, 'no warning on loopback')
})
