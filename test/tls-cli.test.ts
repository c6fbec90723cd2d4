// Client TLS on the built CLI (dist/cmd/tcptee.js, spawned): a bad --tls-cert / --tls-key file is one line naming
// the flag, exit 2, no stack trace; SIGHUP re-reads the certificate files for new handshakes while an open TLS
// connection goes on, and a reload with a broken file is rejected with the running certificate kept.
import t from 'tap'
import { once } from 'node:events'
import { copyFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls'
import { startPeer, waitFor } from './helpers.js'
import { makeCerts } from './support/certs.js'
import { runCli, startListening } from './support/cli-process.js'

const certs = makeCerts(t)

// Regression: transport.ts's ConfigErrors render through the option namer, so the CLI names the flag, not the key.

t.test('bad certificate or key files: one line naming the flag, exit 2, no stack trace', { timeout: 30_000 }, async (t) => {
  const notPem = join(certs.dir, 'not-pem.crt')
  writeFileSync(notPem, 'this is not a certificate\n', { mode: 0o600 })
  const base = ['-l', '127.0.0.1:0', '-f', '127.0.0.1:9']
  const cases: Array<{ what: string; args: string[]; flag: string; key: string; why: RegExp }> = [
    { what: 'a certificate file that is not PEM', args: ['--tls-cert', notPem, '--tls-key', certs.server.keyFile], flag: '--tls-cert', key: 'tlsCert', why: /holds no PEM certificate/ },
    { what: 'a missing key file', args: ['--tls-cert', certs.server.certFile, '--tls-key', join(certs.dir, 'missing.key')], flag: '--tls-key', key: 'tlsKey', why: /cannot read .*missing\.key.*ENOENT/ },
    { what: 'a key that does not match the certificate', args: ['--tls-cert', certs.server.certFile, '--tls-key', certs.server2.keyFile], flag: '--tls-key', key: 'tlsKey', why: /key values mismatch/ },
  ]
  const results = await Promise.all(cases.map((c) => runCli([...base, ...c.args], { timeoutMs: 10_000 })))
  for (const [i, c] of cases.entries()) {
    const r = results[i]!
    t.test(c.what, async (t) => {
      t.equal(r.code, 2, 'exit 2')
      const lines = r.stderr.trimEnd().split('\n')
      t.match(lines[0], c.why, `the line says what is wrong: ${lines[0]}`)
      t.match(lines[0], new RegExp(`^tcptee: (${c.flag}|${c.key}): `), 'and names the option')
      t.match(lines[0], new RegExp(`^tcptee: ${c.flag}: `), `names the flag ${c.flag}`)
      t.equal(lines.filter((l) => !/--help/.test(l)).length, 1, 'one line (and the usage hint)')
      t.notMatch(r.stderr, /^\s+at /m, 'no stack trace')
      t.equal(r.stdout, '', 'nothing on stdout: it never listened')
    })
  }
})

/** The SHA-256 fingerprint of the certificate tcptee presents on a new handshake, checked against the CA for localhost. */
async function fingerprint (port: number): Promise<string> {
  const socket = tlsConnect({ host: '127.0.0.1', port, ca: certs.ca.cert, servername: 'localhost' } as ConnectionOptions)
  try {
    await once(socket, 'secureConnect')
    return socket.getPeerCertificate().fingerprint256
  } finally {
    socket.destroy()
  }
}

t.test('SIGHUP re-reads the certificate files: new handshakes see the new one, an open connection goes on', { timeout: 30_000 }, async (t) => {
  const main = await startPeer(t, 'echo')
  const certFile = join(certs.dir, 'live.crt')
  const keyFile = join(certs.dir, 'live.key')
  copyFileSync(certs.server.certFile, certFile)
  copyFileSync(certs.server.keyFile, keyFile)
  const cli = await startListening(t, ['-f', `127.0.0.1:${main.port}`, '--tls-cert', certFile, '--tls-key', keyFile])
  const msgs = (prefix: string) => cli.lines.filter((l) => String(l['msg']).startsWith(prefix))

  t.equal(await fingerprint(cli.port), certs.server.fingerprint256, 'the certificate the files held at start')

  // A connection that stays open across the reloads.
  const open = tlsConnect({ host: '127.0.0.1', port: cli.port, ca: certs.ca.cert, servername: 'localhost', allowHalfOpen: true } as unknown as ConnectionOptions)
  t.teardown(() => { open.destroy() })
  let echoed = ''
  open.on('data', (d: Buffer) => { echoed += d.toString() })
  const openEnded = once(open, 'end')
  await once(open, 'secureConnect')
  open.write('before-')
  await waitFor('echo before the reload', () => echoed === 'before-')

  // Overwritten in place, as a certificate renewal does.
  writeFileSync(certFile, certs.server2.cert)
  writeFileSync(keyFile, certs.server2.key)
  cli.child.kill('SIGHUP')
  await waitFor('the reload line', () => msgs('configuration reloaded').length === 1)
  t.same(msgs('configuration reloaded')[0]!['restartNeeded'], [], 'nothing needs a restart')
  t.equal(await fingerprint(cli.port), certs.server2.fingerprint256, 'a new handshake sees the new certificate')

  // A broken file: the reload is rejected with one line, and the last good certificate stays.
  writeFileSync(certFile, 'not a certificate\n')
  cli.child.kill('SIGHUP')
  await waitFor('the rejection line', () => msgs('configuration reload rejected').length === 1)
  const rejected = msgs('configuration reload rejected')[0]!
  t.equal(rejected['level'], 50, 'logged at error level')
  t.match(rejected['msg'], /(--tls-cert|tlsCert): .*holds no PEM certificate/, 'naming the option and what is wrong')
  t.match(rejected['msg'], /--tls-cert: /, 'by its flag')
  t.equal(await fingerprint(cli.port), certs.server2.fingerprint256, 'the running certificate stays')

  open.end('after')
  await openEnded
  t.equal(echoed, 'before-after', 'the connection opened before both reloads went on')
  t.equal(cli.child.exitCode, null, 'still running')
  t.equal(cli.stderr(), '', 'nothing on stderr')
  cli.child.kill('SIGTERM')
  t.equal(await cli.exited, 0, 'SIGTERM: exit 0')
})
