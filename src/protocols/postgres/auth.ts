/**
 * How tcptee answers a PostgreSQL server's password challenges as the client: MD5 with the server's salt, and the
 * SCRAM-SHA-256 client (RFC 5802, RFC 7677, as PostgreSQL speaks it: no channel binding, an empty user name in the
 * client-first message). Owns the crypto only; the login stage decides when. Nothing here logs or keeps a password
 * beyond the salted-password cache, which holds PBKDF2 outputs, never passwords.
 */
import { createHash, createHmac, pbkdf2, randomBytes, timingSafeEqual } from 'node:crypto'
import { createRequire } from 'node:module'
import { cstring, encodeMessage } from './messages.js'

/** PasswordMessage with the cleartext password (AuthenticationCleartextPassword). */
export function cleartextResponse (password: string): Buffer {
  return encodeMessage('p', cstring(password))
}

/** PasswordMessage for AuthenticationMD5Password: `md5` + md5(md5(password + user) + salt), in hex. */
export function md5Response (user: string, password: string, salt: Buffer): Buffer {
  const inner = createHash('md5').update(password, 'utf8').update(user, 'utf8').digest('hex')
  const outer = createHash('md5').update(inner, 'latin1').update(salt).digest('hex')
  return encodeMessage('p', cstring(`md5${outer}`))
}

/** The mechanism tcptee speaks; `-PLUS` (channel binding) needs the TLS connection the client made, which it has not. */
export const SCRAM_SHA_256 = 'SCRAM-SHA-256'

/** Loaded on the first SCRAM login: its Unicode tables are not worth their memory in a process that never needs them. */
let saslprep: ((input: string) => string) | undefined

/** SASLprep as PostgreSQL's client does it: a password that is not valid for SASLprep is used as it is. */
function prepare (password: string): string {
  try {
    saslprep ??= createRequire(import.meta.url)('@mongodb-js/saslprep') as (input: string) => string
    return saslprep(password)
  } catch {
    return password
  }
}

/** Salted passwords by (password, salt, iterations) digest: a pgbench run opens many sessions with the same ones. */
const saltedCache = new Map<string, Buffer>()
const SALTED_CACHE_MAX = 64

function saltedPassword (password: string, salt: Buffer, iterations: number, done: (err: Error | null, key: Buffer) => void): void {
  const prepared = prepare(password)
  const key = createHash('sha256').update(prepared, 'utf8').update('\0').update(salt).update(`\0${iterations}`).digest('base64')
  const hit = saltedCache.get(key)
  if (hit !== undefined) {
    done(null, hit)
    return
  }
  // Asynchronous: 4096 rounds of PBKDF2 take milliseconds, which the event loop (and main's traffic) must not wait for.
  pbkdf2(prepared, salt, iterations, 32, 'sha256', (err, derived) => {
    if (err === null) {
      if (saltedCache.size >= SALTED_CACHE_MAX) saltedCache.delete(saltedCache.keys().next().value!)
      saltedCache.set(key, derived)
    }
    done(err, derived)
  })
}

function hmac (key: Buffer, text: string): Buffer {
  return createHmac('sha256', key).update(text, 'utf8').digest()
}

/**
 * One SCRAM-SHA-256 exchange as the client. `start()` gives the SASLInitialResponse; `serverFirst()` checks the
 * server's nonce, salt and iteration count and computes the proof (asynchronously); `serverFinal()` checks the
 * server's signature, so a mirror that does not know the password cannot pretend it does.
 */
export class ScramClient {
  private readonly clientNonce = randomBytes(18).toString('base64')
  private readonly clientFirstBare = `n=,r=${this.clientNonce}`
  private serverSignature: Buffer | undefined

  constructor (private readonly password: string) {}

  /** SASLInitialResponse: mechanism, then the client-first message with GS2 header `n,,` (no channel binding). */
  start (): Buffer {
    const data = Buffer.from(`n,,${this.clientFirstBare}`, 'utf8')
    const len = Buffer.allocUnsafe(4)
    len.writeInt32BE(data.length, 0)
    return encodeMessage('p', Buffer.concat([cstring(SCRAM_SHA_256), len, data]))
  }

  /**
   * The server-first message (AuthenticationSASLContinue data): calls back with the SASLResponse holding the proof,
   * or an error naming what is wrong with the server's message.
   */
  serverFirst (data: Buffer, done: (err: Error | undefined, response?: Buffer) => void): void {
    const serverFirst = data.toString('utf8')
    const attrs = scramAttributes(serverFirst)
    const nonce = attrs.get('r')
    const saltText = attrs.get('s')
    const iterations = Number(attrs.get('i'))
    if (nonce === undefined || !nonce.startsWith(this.clientNonce) || nonce.length === this.clientNonce.length) {
      done(new Error('SCRAM: the server nonce does not extend ours'))
      return
    }
    if (saltText === undefined || saltText.length === 0) {
      done(new Error('SCRAM: the server sent no salt'))
      return
    }
    if (!Number.isInteger(iterations) || iterations < 1 || iterations > 10_000_000) {
      done(new Error(`SCRAM: bad iteration count ${attrs.get('i') ?? '(none)'}`))
      return
    }
    const salt = Buffer.from(saltText, 'base64')
    saltedPassword(this.password, salt, iterations, (err, salted) => {
      if (err !== null) {
        done(err)
        return
      }
      const clientFinalWithoutProof = `c=${Buffer.from('n,,').toString('base64')},r=${nonce}`
      const authMessage = `${this.clientFirstBare},${serverFirst},${clientFinalWithoutProof}`
      const clientKey = hmac(salted, 'Client Key')
      const storedKey = createHash('sha256').update(clientKey).digest()
      const clientSignature = hmac(storedKey, authMessage)
      const proof = Buffer.allocUnsafe(clientKey.length)
      for (let i = 0; i < proof.length; i++) proof[i] = clientKey[i]! ^ clientSignature[i]!
      this.serverSignature = hmac(hmac(salted, 'Server Key'), authMessage)
      done(undefined, encodeMessage('p', Buffer.from(`${clientFinalWithoutProof},p=${proof.toString('base64')}`, 'utf8')))
    })
  }

  /** The server-final message (AuthenticationSASLFinal data): undefined when the server proved it knows the password. */
  serverFinal (data: Buffer): Error | undefined {
    const attrs = scramAttributes(data.toString('utf8'))
    const e = attrs.get('e')
    if (e !== undefined) return new Error(`SCRAM: the server refused: ${e}`)
    const v = attrs.get('v')
    if (v === undefined || this.serverSignature === undefined) return new Error('SCRAM: no server signature')
    const got = Buffer.from(v, 'base64')
    if (got.length !== this.serverSignature.length || !timingSafeEqual(got, this.serverSignature)) {
      return new Error('SCRAM: the server signature is wrong (the server does not know the password)')
    }
    return undefined
  }
}

/** `r=...,s=...,i=4096` into its attributes (values may contain `=`). */
function scramAttributes (text: string): Map<string, string> {
  const out = new Map<string, string>()
  for (const part of text.split(',')) {
    if (part.length >= 2 && part[1] === '=') out.set(part[0]!, part.slice(2))
  }
  return out
}
