// The error classes of src/ops/errors.ts: each one's name (on the instance and the class, which pino's err
// serializer reports as `type`), stable code, message, cause, instanceof chain and own enumerable fields (what a
// logger serialises), and briefError's one-line form of them.
import t from 'tap'
import * as errors from '../src/ops/errors.js'
import { ProxyProtocolError } from '../src/protocols/proxy/index.js'

const { ErrorCodes, TcpteeError, briefError } = errors

/** Every class with a fixed code, that code's key in ErrorCodes, and whether its callers may give a cause. */
const FIXED: Array<[new (message: string, options?: { cause?: unknown }) => errors.TcpteeError, keyof typeof ErrorCodes, boolean]> = [
  [errors.ListenError, 'LISTEN', true],
  [errors.MainConnectError, 'MAIN_CONNECT', true],
  [errors.MainConnectTimeoutError, 'MAIN_CONNECT_TIMEOUT', false],
  [errors.MirrorConnectError, 'MIRROR_CONNECT', true],
  [errors.MirrorConnectTimeoutError, 'MIRROR_CONNECT_TIMEOUT', false],
  [errors.MirrorOverflowError, 'MIRROR_OVERFLOW', false],
  [errors.MirrorFloodError, 'MIRROR_FLOOD', false],
  [errors.MirrorWriteTimeoutError, 'MIRROR_WRITE_TIMEOUT', false],
  [errors.ShutdownError, 'SHUTDOWN', false],
  [errors.AdminListenError, 'ADMIN_LISTEN', true],
  [errors.WorkersUnavailableError, 'WORKERS_UNAVAILABLE', false],
  [errors.MirrorTlsError, 'MIRROR_TLS', true],
  [errors.MirrorAuthError, 'MIRROR_AUTH', true],
  [errors.MainTlsError, 'MAIN_TLS', true],
  [errors.ClientTlsError, 'CLIENT_TLS', true],
  [errors.CaptureError, 'CAPTURE', true],
  [errors.RecordError, 'RECORD', true],
  [errors.StatusReadError, 'STATUS_READ', true],
  [errors.AppError, 'APP', true],
]

t.test('every class with a fixed code: name, code, message, cause, instanceof, own fields', async (t) => {
  const names = Object.keys(errors).filter((k) => /^[A-Z]\w*Error$/.test(k) && k !== 'TcpteeError' && k !== 'ConfigError').sort()
  t.same(FIXED.map(([C]) => C.name).sort(), names, 'the list covers every exported class')
  for (const [C, key, takesCause] of FIXED) {
    const cause = new Error('low level')
    const e = takesCause ? new C('it failed', { cause }) : new C('it failed')
    t.equal(C.name, names.find((n) => n === C.name), `${C.name}: class name`)
    t.equal(e.name, C.name, `${C.name}: instance name`)
    t.equal(e.code, ErrorCodes[key], `${C.name}: code`)
    t.equal(e.message, 'it failed')
    t.equal(e.cause, takesCause ? cause : undefined)
    t.ok(e instanceof C && e instanceof TcpteeError && e instanceof Error, `${C.name}: instanceof`)
    t.equal(e.constructor, C)
    t.same(Object.keys(e).sort(), ['code', 'name'], `${C.name}: own enumerable fields`)
    t.notOk('cause' in new C('no cause'), `${C.name}: no cause unless given`)
    t.match(String(e.stack), new RegExp(`^${C.name}: it failed\\n`), `${C.name}: stack header`)
    t.same(briefError(e), { type: C.name, code: ErrorCodes[key], message: takesCause ? 'it failed: low level' : 'it failed' })
  }
})

t.test('TcpteeError, ConfigError and a subclass elsewhere keep their shape', async (t) => {
  const base = new TcpteeError(ErrorCodes.RECORD, 'x')
  t.same([base.name, base.code, Object.keys(base).sort()], ['TcpteeError', 'TCPTEE_ERR_RECORD', ['code', 'name']])
  const c = new errors.ConfigError('mirrorBuffer: too small', '--mirror-buffer', { key: 'mirrorBuffer', render: (n) => `${n('mirrorBuffer')}: too small` })
  t.same([c.name, c.code, c.flag, c.key, c.messageFor((k) => `--${k}`)], ['ConfigError', 'TCPTEE_ERR_CONFIG', '--mirror-buffer', 'mirrorBuffer', '--mirrorBuffer: too small'])
  t.ok(c instanceof TcpteeError)
  t.notOk(Object.keys(c).includes('render'))
  t.ok(ProxyProtocolError.prototype instanceof TcpteeError)
})
