// Mirror entries and options of protocol-aware mirrors: http://user:pass@, @host=, @rps, @cps; the password never
// shows in errors or JSON; --mirror-http-* need --protocol http and are validated with one message naming the option.
import t from 'tap'
import { normalizeConfig, parseMirrorSpec } from '../src/config.js'

t.test('http:// entries with user, password and suffixes', async (t) => {
  const s = parseMirrorSpec('http://shadow:p%40ss%3Aw@staging:8080@host=staging.example.com@100rps@20cps@25%', 'command-line')
  t.same(s.address, { host: 'staging', port: 8080 })
  t.equal(s.basicAuth?.user, 'shadow')
  t.equal(s.basicAuth?.password, 'p@ss:w', '%-escapes decoded')
  t.equal(s.httpHost, 'staging.example.com')
  t.equal(s.rps, 100)
  t.equal(s.cps, 20)
  t.equal(s.percent, 25)
  t.notMatch(JSON.stringify(s), /p@ss|p%40ss/, 'JSON shows no password')
  t.match(JSON.stringify(s), /"password":"sha256:[0-9a-f]{12}"/, 'only a digest of it')
  const plain = parseMirrorSpec('http://staging:80@25%', 'command-line')
  t.equal(plain.basicAuth, undefined, 'http://host:port@25%: no user')
  t.equal(plain.percent, 25)
  t.equal(parseMirrorSpec('redis:6379@5cps', 'command-line').cps, 5, '@cps without http://')
})

t.test('errors name the option and never show the password', async (t) => {
  t.throws(() => normalizeConfig({ main: ':1', mirrors: ['http://u:hunter2@h:1@nope'], protocol: 'http' }), { message: /^mirrors \(http:\/\/u:\*\*\*@h:1@nope\): "nope" is not a percentage/ })
  t.throws(() => normalizeConfig({ main: ':1', mirrors: ['ftp://h:1'] }), { message: /only tls:\/\/ or http:\/\// })
  t.throws(() => normalizeConfig({ main: ':1', mirrors: ['http://u:p@h:1'] }), { message: /http:\/\/, @host= and @rps need protocol http/ })
  t.throws(() => normalizeConfig({ main: ':1', mirrorHttpHost: 'x' }), { message: 'mirrorHttpHost needs protocol http' })
  t.throws(() => normalizeConfig({ main: ':1', protocol: 'http', mirrorHttpUrl: '(' }), { message: /^mirrorHttpUrl: "\(" is not a regular expression/ })
  t.throws(() => normalizeConfig({ main: ':1', protocol: 'http', mirrorHttpHeaderHash: 'u:0/0' }), { message: /^mirrorHttpHeaderHash: "u:0\/0" is not "name:K\/N"/ })
  t.throws(() => normalizeConfig({ main: ':1', protocol: 'http', mirrorHttpHeaderFilter: ['nocolon'] }), { message: /^mirrorHttpHeaderFilter: "nocolon"/ })
  t.throws(() => normalizeConfig({ main: ':1', protocol: 'http', mirrorHttpHeader: ['Bad Name: 1'] }), { message: /^mirrorHttpHeader: "Bad Name: 1" is not "Name: value"/ })
})

t.test('normalised http options', async (t) => {
  const c = normalizeConfig({ main: ':1', protocol: 'http', mirrorHttpHeader: ['X-Shadow: 1', 'Accept: a, b'], mirrorHttpMethod: ['get,head', 'POST'], mirrorHttpHeaderHash: 'User-Id:1/32', mirrorSplit: true })
  t.same(c.http?.headers, [['X-Shadow', '1'], ['Accept', 'a, b']], 'header values keep their commas')
  t.same([...(c.http?.methods ?? [])], ['GET', 'HEAD', 'POST'])
  t.same(c.http?.headerHash, { name: 'user-id', part: 1, of: 32 })
  t.equal(c.mirrorSplit, true)
  t.equal(normalizeConfig({ main: ':1', protocol: 'redis' }).http, undefined)
})
