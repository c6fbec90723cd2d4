// The status page (GET / on the admin endpoint) in a real browser: headless Chromium (Debian's chromium) driven by
// puppeteer-core, against the built CLI with --workers 2 and basic auth. The page must load, show each mirror's
// merged state, follow a mirror that is killed (backing off) and one that is removed within a few seconds over
// Server-Sent Events, and answer 401 without credentials. A page that does not update, shows one worker's numbers
// or leaks past the auth fails here. Leaves a screenshot at /work/wt/status-page.png (or $STATUS_PAGE_SCREENSHOT).
import t from 'tap'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import puppeteer from 'puppeteer-core'
import { call } from './support/admin-http.js'
import { startCli } from './support/cli-process.js'
import { requireBins } from './support/require-bin.js'
import { client, freePort, startPeer, waitFor } from './helpers.js'

const bins = requireBins(t, ['chromium'], 'apt-get install chromium')
const SHOT = process.env['STATUS_PAGE_SCREENSHOT'] ?? '/work/wt/status-page.png'

if (bins !== undefined) {
  t.test('status page: live mirror states over SSE with --workers 2, 401 without auth', async (t) => {
    const main = await startPeer(t, 'echo')
    const a = await startPeer(t, 'junk') // answers JUNK where main echoes: every connection diverges (--diff bytes)
    const b = await startPeer(t, 'record')
    const dir = mkdtempSync(join(tmpdir(), 'tcptee-status-'))
    const authFile = join(dir, 'admin-auth')
    writeFileSync(authFile, 'ops:s3cret pass\n', { mode: 0o600 })
    const [port, adminPort] = [await freePort(), await freePort()]
    const cli = startCli(t, ['--workers', '2', '-l', `127.0.0.1:${port}`, '-f', `127.0.0.1:${main.port}`, '-m', `127.0.0.1:${a.port},127.0.0.1:${b.port}`,
      '--admin', `127.0.0.1:${adminPort}`, '--admin-auth-file', authFile, '--retry-delay', '1m', '--diff', 'bytes'])
    await cli.line('listening', { n: 1, timeoutMs: 60_000 })
    await cli.line('admin endpoint listening', { timeoutMs: 60_000 })
    const auth = 'ops:s3cret pass'
    const A = `127.0.0.1:${a.port}`
    const B = `127.0.0.1:${b.port}`

    const send = async (n: number): Promise<void> => {
      for (let i = 0; i < n; i++) {
        const c = client(t, port)
        await c.connected
        c.socket.end(`hello ${i}\n`)
        await c.ended
      }
    }
    await send(4)

    // Without credentials: 401 for the page, its data and its event stream, like every other endpoint.
    for (const path of ['/', '/status', '/events']) t.equal((await call(adminPort, path)).status, 401, `${path} without auth: 401`)
    t.equal((await call(adminPort, '/', { auth: 'ops:wrong' })).status, 401, 'wrong password: 401')

    const browser = await puppeteer.launch({
      executablePath: bins.chromium,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage'],
    })
    t.teardown(() => browser.close())

    const page = await browser.newPage()
    await page.setViewport({ width: 1280, height: 900 })
    await page.authenticate({ username: 'ops', password: 's3cret pass' })
    const res = await page.goto(`http://127.0.0.1:${adminPort}/`)
    t.equal(res?.status(), 200)
    t.match(res?.headers()['content-type'], /^text\/html/)
    await page.waitForSelector('#conn[data-live="true"]', { timeout: 10_000 })
    const stateOf = (addr: string) => page.$eval(`tr[data-target="${addr}"]`, (e) => e.getAttribute('data-state')).catch(() => null)
    await waitFor('both mirrors up on the page', async () => (await stateOf(A)) === 'up' && (await stateOf(B)) === 'up', { timeoutMs: 10_000, intervalMs: 100 })
    // Numbers merged over both workers (the cluster primary sums them). Fates are counted over the window the page
    // has samples for, so the 6 connections made while it watches are the ones in the fate columns.
    await send(6)
    const text = (sel: string) => page.$eval(sel, (e) => e.textContent).catch(() => null)
    await waitFor('10 connections in total on the page', async () => (await text('#c-total')) === '10', { timeoutMs: 8_000, intervalMs: 100 })
    await waitFor('6 ok fates for A on the page', async () => (await text(`tr[data-target="${A}"] td[data-fate="ok"]`)) === '6', { timeoutMs: 8_000, intervalMs: 100 })
    t.pass('the page shows 10 connections and 6 ok fates for mirror A (new since it was opened), from both workers')
    await waitFor('divergence records on the page', async () => (await page.$$(`#divergences tr[data-mirror="${A}"]`)).length === 10, { timeoutMs: 8_000, intervalMs: 100 })
    t.match(await text(`#divergences tr[data-mirror="${A}"] td:last-child`), /differ/, 'the latest divergences say what differs')
    t.match(await text(`tr[data-target="${A}"] td.diff`), /diverged 10/, 'the diff counters of A: 10 connections diverged')

    // Kill mirror B: new connections are refused there, the workers that saw it back off, the page follows.
    await b.close()
    await send(6)
    const status = async () => JSON.parse((await call(adminPort, '/status', { auth })).text) as { mirrors: Array<{ address: string; state: string }> }
    await waitFor('B backing off in /status', async () => (await status()).mirrors.find((m) => m.address === B)?.state === 'backing-off', { timeoutMs: 10_000, intervalMs: 100 })
    const seenAt = Date.now()
    await waitFor('B backing off on the page', async () => (await stateOf(B)) === 'backing-off', { timeoutMs: 8_000, intervalMs: 100 })
    const lag = Date.now() - seenAt
    t.ok(lag < 8000, `the page showed B backing off ${lag} ms after /status did`)
    t.equal(await stateOf(A), 'up', 'A still up')
    const refusedB = Number(await page.$eval(`tr[data-target="${B}"] td[data-fate="refused"]`, (e) => e.textContent))
    t.ok(refusedB >= 1, `B's refused fates on the page: ${refusedB}`)

    // Remove mirror A at run time: the page shows it removed.
    t.equal((await call(adminPort, `/mirrors?addr=${A}`, { method: 'DELETE', auth })).status, 200)
    await waitFor('A removed on the page', async () => (await stateOf(A)) === 'removed', { timeoutMs: 8_000, intervalMs: 100 })

    // It keeps updating by itself: the update stamp moves without a reload.
    const stamp = await page.$eval('body', (e) => e.getAttribute('data-updated'))
    await waitFor('another update', async () => (await page.$eval('body', (e) => e.getAttribute('data-updated'))) !== stamp, { timeoutMs: 6_000, intervalMs: 100 })
    const paths = await page.$$eval('#chart-bytes path', (ps) => ps.length)
    t.ok(paths >= 1, 'the bytes chart has drawn lines')
    await page.screenshot({ path: SHOT, fullPage: true })
    t.pass(`screenshot saved to ${SHOT}`)
    await page.close()

    // A browser without credentials (a context of its own, so nothing cached is sent) gets 401 and no page.
    // Headless Chromium has no prompt to show for the 401's challenge: either goto returns the 401 or it fails with
    // ERR_INVALID_AUTH_CREDENTIALS, which Chromium gives only for an auth challenge it could not answer.
    const anonymous = await (await browser.createBrowserContext()).newPage()
    const statuses: number[] = []
    anonymous.on('response', (r) => { if (r.url() === `http://127.0.0.1:${adminPort}/`) statuses.push(r.status()) })
    const refused = await anonymous.goto(`http://127.0.0.1:${adminPort}/`).then(
      (r) => `status ${r?.status() ?? 'none'}`,
      (err: Error) => /ERR_INVALID_AUTH_CREDENTIALS/.test(err.message) ? 'status 401' : err.message)
    t.equal(refused, 'status 401', 'the browser without credentials gets 401')
    t.notOk(statuses.some((s) => s !== 401), `no other answer (${statuses.join(', ')})`)
    t.notOk(await anonymous.$('#mirrors'), 'and no page')
    t.equal(cli.count('status page: could not read'), 0, 'every sample was read')
  })
}
