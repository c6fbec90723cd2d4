// The option table (src/options.ts) is the one place an option is declared. These tests check that what is generated
// from it agrees with the code that uses it: the defaults shown in help and README are the ones normalizeConfig applies,
// every option is a config file key, an environment variable and a flag in error messages, every reload rule is
// honoured, and README.md's flag table is the generated one.
import t from 'tap'
import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { ConfigError, normalizeConfig, type DuplicatorOptions } from '../src/index.js'
import { configValue, mirrorProxyVersion, mirrorTlsMode, parseMirrorSpec } from '../src/config.js'
import { envName, flagName, option, OPTION_GROUPS, OPTIONS, optionsMarkdownTable, spellings } from '../src/options.js'
import { fileSchema, parseCli, rewriteLegacyFlags } from '../cmd/tcptee/args.js'
import { README_END, README_START, readmeWithOptions } from '../cmd/tcptee/docs-options.js'
import { defaultLabel, DOCS_URL, helpText, optionLabel } from '../cmd/tcptee/help.js'

const README = fileURLToPath(new URL('../README.md', import.meta.url))

t.test('every row is complete and unique; keys and flags follow one naming rule', async (t) => {
  const keys = new Set<string>()
  const names = new Set<string>()
  for (const o of OPTIONS) {
    t.notOk(keys.has(o.key), `${o.key}: key once`)
    keys.add(o.key)
    for (const s of spellings(o)) {
      t.notOk(names.has(s), `${s}: spelling once`)
      names.add(s)
    }
    t.match(o.flag, /^[a-z]+(-[a-z]+)*$/, `${o.flag}: kebab-case`)
    t.match(o.key, /^[a-z][A-Za-z]*$/, `${o.key}: camelCase`)
    t.match(envName(o), /^TCPTEE_[A-Z_]+$/)
    t.ok(o.help.length > 0 && o.doc.length > 0, `${o.flag}: help and doc`)
    if (o.type === 'choices') t.ok(o.choices.length > 1, `${o.flag}: choices`)
    t.ok(Object.hasOwn(OPTION_GROUPS, o.group), `${o.flag}: group "${o.group}" is one of OPTION_GROUPS`)
    // --help says what kind of value a flag takes: every flag that takes a free-form value names its kind.
    if (o.type === 'string' || o.type === 'array') t.not(o.value, '', `${o.flag}: value kind`)
    else t.equal(o.value, '', `${o.flag}: a switch or a choice has no value kind`)
  }
  t.same(OPTIONS.filter((o) => o.value === 'duration').map((o) => o.flag).sort(),
    ['connect-timeout', 'fail-after', 'mirror-batch', 'mirror-connect-timeout', 'mirror-write-timeout', 'retry-delay', 'shutdown-timeout'])
  t.same(OPTIONS.filter((o) => o.value === 'size').map((o) => o.flag).sort(), ['diff-window', 'mirror-buffer', 'record-buffer', 'record-max-size'])
  t.equal(envName(option('mirrorBuffer')), 'TCPTEE_MIRROR_BUFFER')
  t.same(spellings(option('main')), ['-f', '--forward', '--main'])
  t.same(spellings(option('mirrorWriteTimeout')), ['-wt', '--mirror-write-timeout'], 'goduplicator -wt')
  for (const [key, short] of [['listen', '-l'], ['main', '-f'], ['mirrors', '-m'], ['mirrorConnectTimeout', '-t'], ['retryDelay', '-d'], ['percent', '-p']]) {
    t.ok(spellings(option(key!)).includes(short!), `${key} is ${short}`)
  }
  t.same(rewriteLegacyFlags(['-wt', '20ms', '-wt=1s', '-w']), ['--mirror-write-timeout', '20ms', '--mirror-write-timeout=1s', '-w'])
})

t.test('the defaults in help and README are the ones normalizeConfig applies', async (t) => {
  const none = normalizeConfig({ main: ':1' }) as unknown as Record<string, unknown>
  for (const o of OPTIONS.filter((o) => o.scope === 'library' && o.default !== undefined)) {
    // Options that only mean something with another one (normalizeConfig refuses them alone) get it on both sides.
    const needs: DuplicatorOptions | undefined = o.key === 'diffWindow' ? { main: ':1', diff: 'bytes' } : o.key.startsWith('record') ? { main: ':1', record: 'x.pcapng' } : undefined
    const given = normalizeConfig({ main: ':1', ...needs, [o.key]: o.default } as DuplicatorOptions)
    const base = needs !== undefined ? normalizeConfig(needs) : none
    t.same(configValue(given, o.key), configValue(base as never, o.key), `${o.flag}: default ${o.default}`)
  }
})

t.test('every option is a config file key, a flag and an environment variable', async (t) => {
  const schema = fileSchema()
  for (const o of OPTIONS) t.ok(o.flag in schema, `${o.flag} may be in a config file`)
  t.equal(schema['mirror-batch'], 'scalar', 'mirror-batch (was missing from the hand-kept list)')
  t.equal(schema['mirror'], 'list')
  t.equal(schema['proxy-protocol-in'], 'boolean')
  t.equal(schema['main'], 'scalar', 'long aliases too')
  // Each option through the environment reaches the options object under its key.
  const samples: Record<string, [string, unknown]> = {
    mirrorBatch: ['0', '0'], tlsCert: ['c.pem', 'c.pem'], mainTls: ['verify', 'verify'], proxyProtocolIn: ['true', true],
    proxyProtocolFrom: ['10.0.0.0/8,::1', ['10.0.0.0/8,::1']], mirrorProxyProtocol: ['v2', 'v2'], diffIgnoreHeaders: ['date', ['date']],
  }
  for (const [key, [text, want]] of Object.entries(samples)) {
    const name = envName(option(key))
    process.env[name] = text
    try {
      const opts = await parseCli(['-l', ':0', '-f', ':1']) as unknown as Record<string, unknown>
      t.same(opts[key], want, `${name} → ${key}`)
    } finally {
      delete process.env[name]
    }
  }
})

t.test('library errors name the option key; the CLI names the flag; the text is the same', async (t) => {
  const cases: Array<[DuplicatorOptions, string, string]> = [
    [{ main: ':1', mirrorBuffer: 12 }, 'mirrorBuffer: 12 bytes is too small (at least 1024)', '--mirror-buffer: 12 bytes is too small (at least 1024)'],
    [{ main: ':1', mirrors: [':1'] }, 'mirrors: 127.0.0.1:1 is also the main server (main)', '--mirror: 127.0.0.1:1 is also the main server (--forward)'],
    [{ main: ':1', mirrorWriteTimeout: '20parsecs' }, 'mirrorWriteTimeout: "20parsecs" is not a duration; use e.g. 500ms, 20s, 1m', '--mirror-write-timeout: "20parsecs" is not a duration; use e.g. 500ms, 20s, 1m'],
    [{ main: 'nope' }, 'main: "nope" is not an address; expected host:port, :port or port', '--forward: "nope" is not an address; expected host:port, :port or port'],
    [{ main: ':1', percent: '200' }, 'percent: "200" is not a percentage between 0 and 100', '--percent: "200" is not a percentage between 0 and 100'],
    [{ main: ':1', diff: 'bytes', diffWindow: 10 }, 'diffWindow: 10 bytes is out of range (1KiB to 1GiB)', '--diff-window: 10 bytes is out of range (1KiB to 1GiB)'],
    [{ main: ':1', tlsCert: 'c.pem' }, 'tlsCert needs tlsKey', '--tls-cert needs --tls-key'],
    [{ main: ':1', proxyProtocolFrom: '10.0.0.0/8' }, 'proxyProtocolFrom needs proxyProtocolIn', '--proxy-protocol-from needs --proxy-protocol-in'],
  ]
  for (const [opts, library, cli] of cases) {
    const err = (() => { try { normalizeConfig(opts); return undefined } catch (e) { return e } })()
    t.type(err, ConfigError)
    const e = err as ConfigError
    t.equal(e.message, library)
    t.equal(e.messageFor(flagName), cli)
    t.equal(e.flag, flagName(e.key!), 'flag is the CLI spelling of key')
  }
})

t.test('new options: TLS, PROXY protocol, and mirror entries with tls:// and @proxy-vN', async (t) => {
  const c = normalizeConfig({
    main: ':1', tlsCert: 'c.pem', tlsKey: 'k.pem', tlsClientCa: 'ca.pem', mainTls: 'verify', mirrorTls: 'on', tlsCa: 'roots.pem',
    tlsServername: 'db.internal', proxyProtocolIn: true, proxyProtocolFrom: ['10.0.0.0/8, 192.168.1.7', 'fd00::/8', '::1'],
    proxyProtocolOut: 'v2', mirrorProxyProtocol: 'v1',
  })
  t.same(c.tls, { cert: 'c.pem', key: 'k.pem', clientCa: 'ca.pem' })
  t.match(c, { mainTls: 'verify', mirrorTls: 'on', tlsCa: 'roots.pem', tlsServername: 'db.internal', proxyProtocolIn: true, proxyProtocolOut: 'v2', mirrorProxyProtocol: 'v1' })
  t.same(c.proxyProtocolFrom, ['10.0.0.0/8', '192.168.1.7', 'fd00::/8', '::1'])
  const d = normalizeConfig({ main: ':1' })
  t.match(d, { tls: undefined, mainTls: 'off', mirrorTls: 'off', tlsCa: undefined, proxyProtocolIn: false, proxyProtocolOut: undefined, mirrorProxyProtocol: undefined })
  t.same(d.proxyProtocolFrom, [])
  t.same(normalizeConfig({ main: ':1', tls: { cert: 'a', key: 'b' } }).tls, { cert: 'a', key: 'b', clientCa: undefined }, 'the structured form')

  for (const [opts, re] of [
    [{ tlsKey: 'k' }, /^tlsKey needs tlsCert$/],
    [{ tlsClientCa: 'ca' }, /^tlsClientCa needs tlsCert$/],
    [{ tls: { cert: 'a', key: 'b' }, tlsCert: 'a' }, /not both/],
    [{ mainTls: 'maybe' }, /^mainTls: "maybe" is not one of off, on, verify, prefer$/],
    [{ mainTls: 'prefer' }, /^mainTls prefer needs protocol postgres or mysql/],
    [{ mirrorTls: 'prefer', protocol: 'http' }, /^mirrorTls prefer needs protocol postgres or mysql/],
    [{ mirrorTls: 'yes' }, /^mirrorTls: /],
    [{ proxyProtocolOut: 'v3' }, /^proxyProtocolOut: "v3" is not one of v1, v2$/],
    [{ proxyProtocolIn: true, proxyProtocolFrom: '10.0.0.0/33' }, /"10\.0\.0\.0\/33" is not an IPv4 or IPv6 address or CIDR/],
    [{ proxyProtocolIn: true, proxyProtocolFrom: 'example.com' }, /"example\.com" is not/],
    [{ proxyProtocolIn: true, proxyProtocolFrom: '::1/129' }, /"::1\/129" is not/],
    [{ tlsServername: 'bad name' }, /^tlsServername: "bad name" is not a host name$/],
  ] as Array<[Partial<DuplicatorOptions>, RegExp]>) {
    t.throws(() => normalizeConfig({ main: ':1', ...opts }), { code: 'TCPTEE_ERR_CONFIG', message: re }, JSON.stringify(opts))
  }

  const specs = normalizeConfig({ main: ':1', mirrors: ['tls://h:2@proxy-v2@25%', 'h:3@25%@proxy-v1', 'TLS://[::1]:4', 'h:5'] }).mirrorSpecs
  t.same(specs.map((s) => [s.address.host, s.address.port, s.tls, s.proxy, s.percent]), [
    ['h', 2, true, 'v2', 25], ['h', 3, false, 'v1', 25], ['::1', 4, true, undefined, undefined], ['h', 5, false, undefined, undefined],
  ])
  t.same(specs.map((s) => mirrorTlsMode(s, { mirrorTls: 'off' })), ['on', 'off', 'on', 'off'], 'tls:// turns TLS on for one mirror')
  t.same(specs.map((s) => mirrorTlsMode(s, { mirrorTls: 'verify' })), ['verify', 'verify', 'verify', 'verify'], '--mirror-tls verify applies to tls:// mirrors too')
  t.same(specs.map((s) => mirrorProxyVersion(s, { mirrorProxyProtocol: 'v1' })), ['v2', 'v1', 'v1', 'v1'], 'a mirror\'s own @proxy-vN wins')
  t.throws(() => normalizeConfig({ main: ':1', mirrors: ['h:2', 'tls://h:2'] }), { message: /mirrors: h:2 is given twice/ }, 'the name is the plain host:port')
  for (const [bad, re] of [['h:2@proxy-v3', /"@proxy-v3" in "h:2@proxy-v3" is not @proxy-v1 or @proxy-v2/], ['h:2@1%@2%', /percentage twice/],
    ['h:2@proxy-v1@proxy-v2', /twice/], ['tcp://h:2', /only tls:\/\//], ['tls://h:2@200%', /"200%" is not a percentage/]] as const) {
    t.throws(() => parseMirrorSpec(bad, 'runtime', 'mirror'), { message: re }, bad)
  }
})

t.test('reload rules: the table decides what a reload applies and what it reports', async (t) => {
  t.same(OPTIONS.filter((o) => o.reload === 'apply').map((o) => o.key).sort(), ['mirrorCredentials', 'mirrors', 'percent', 'tlsCert', 'tlsClientCa', 'tlsKey'])
  t.equal(option('config').reload, 'never')
  for (const o of OPTIONS.filter((o) => o.key !== 'config' && o.reload !== 'apply')) t.equal(o.reload, 'restart', `${o.flag} needs a restart`)
})

t.test('--help shows every option once, under its group, with its value kind and its default in one form', async (t) => {
  const text = helpText(100)
  const titles = Object.values(OPTION_GROUPS)
  // The group titles appear in their order, each once.
  const at = titles.map((title) => text.indexOf(`\n${title}:\n`))
  t.ok(at.every((i) => i > 0), 'every group has a section')
  t.same([...at].sort((a, b) => a - b), at, 'sections in OPTION_GROUPS order')
  for (const o of OPTIONS) {
    const label = optionLabel(o)
    const start = text.indexOf(`  ${label}`)
    t.ok(start > 0, `${o.flag}: "${label}" is in the help`)
    t.equal(text.indexOf(`  ${label}`, start + 1), -1, `${o.flag}: once`)
    // Its section is the last title before it.
    const section = titles.filter((title) => text.indexOf(`\n${title}:\n`) < start).at(-1)
    t.equal(section, OPTION_GROUPS[o.group], `${o.flag}: under ${OPTION_GROUPS[o.group]}`)
    const entry = text.slice(start, text.indexOf('\n  ', start + 3) === -1 ? undefined : text.indexOf('\n  -', start + 3))
    t.ok(entry.replace(/\s+/g, ' ').includes(defaultLabel(o)), `${o.flag}: ${defaultLabel(o)}`)
  }
  t.equal(optionLabel(option('mirrorBuffer')), '    --mirror-buffer <size>')
  t.equal(optionLabel(option('mirrorConnectTimeout')), '-t, --mirror-connect-timeout <duration>')
  t.equal(optionLabel(option('main')), '-f, --forward, --main <address>')
  t.equal(optionLabel(option('logFormat')), '    --log-format <json|pretty>')
  t.equal(optionLabel(option('proxyProtocolIn')), '    --proxy-protocol-in')
  t.equal(defaultLabel(option('listen')), '[required]')
  t.equal(defaultLabel(option('mirrorBuffer')), '[default: 4MiB]')
  t.equal(defaultLabel(option('mirrors')), '[default: none]')
  for (const unit of ['500ms', '1m30s', 'KiB', '4MiB', '[::1]', 'TCPTEE_MIRROR_BUFFER', DOCS_URL]) t.ok(text.includes(unit), `epilogue: ${unit}`)
  // Wrapped to the terminal: only a single word longer than the room left, or an example command, may stick out.
  const tooLong = helpText(80).split('\n').filter((l) => l.length > 80 && l.trim().includes(' ') && !l.startsWith('  tcptee '))
  t.same(tooLong, [], 'fits 80 columns')
})

t.test('README.md: the flag table between the markers is the generated one', async (t) => {
  const text = readFileSync(README, 'utf8')
  if (!text.includes(README_START) || !text.includes(README_END)) {
    // The markers are being added with the README rewrite; until then there is nothing to compare.
    t.comment(`README.md has no ${README_START} … ${README_END} markers yet: nothing to compare`)
    t.pass('no markers yet')
    return
  }
  t.equal(readmeWithOptions(text), text, 'README.md is up to date (node dist/cmd/tcptee/docs-options.js rewrites it)')
  t.ok(text.includes(optionsMarkdownTable()))
})

t.test('readmeWithOptions replaces exactly the text between the markers', async (t) => {
  const doc = `# x\n\n${README_START}\nold table\n${README_END}\n\nafter\n`
  const out = readmeWithOptions(doc)
  t.equal(out, `# x\n\n${README_START}\n${optionsMarkdownTable()}${README_END}\n\nafter\n`)
  t.equal(readmeWithOptions(out), out, 'idempotent')
  t.throws(() => readmeWithOptions('# no markers\n'), /needs <!-- options:start -->/)
})
