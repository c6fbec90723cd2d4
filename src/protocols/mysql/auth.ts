import { constants, createHash, publicEncrypt } from 'node:crypto'
import { ed25519Sign } from './ed25519.js'

/**
 * The auth responses tcptee computes for a mirror, one function per plugin (the scramble comes from the mirror's
 * greeting or its AuthSwitchRequest). Owns the algorithms only; when to send what is the login stage's business.
 */

export const NATIVE = 'mysql_native_password'
export const CACHING_SHA2 = 'caching_sha2_password'
export const ED25519 = 'client_ed25519'
export const CLEAR = 'mysql_clear_password'

/** Plugins tcptee can answer for. */
export const SUPPORTED_PLUGINS: readonly string[] = [NATIVE, CACHING_SHA2, ED25519, CLEAR]

function hash (algorithm: string, ...parts: Buffer[]): Buffer {
  const h = createHash(algorithm)
  for (const p of parts) h.update(p)
  return h.digest()
}

function xor (a: Buffer, b: Buffer): Buffer {
  const out = Buffer.alloc(a.length)
  for (let i = 0; i < a.length; i++) out[i] = a[i]! ^ b[i % b.length]!
  return out
}

/** mysql_native_password: SHA1(pw) XOR SHA1(scramble || SHA1(SHA1(pw))); empty for an empty password. */
export function nativePassword (password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0)
  const stage1 = hash('sha1', Buffer.from(password, 'utf8'))
  const stage2 = hash('sha1', stage1)
  return xor(stage1, hash('sha1', scramble.subarray(0, 20), stage2))
}

/** caching_sha2_password's fast path: SHA256(pw) XOR SHA256(SHA256(SHA256(pw)) || scramble). */
export function cachingSha2Password (password: string, scramble: Buffer): Buffer {
  if (password === '') return Buffer.alloc(0)
  const stage1 = hash('sha256', Buffer.from(password, 'utf8'))
  const stage2 = hash('sha256', stage1)
  return xor(stage1, hash('sha256', stage2, scramble.subarray(0, 20)))
}

/**
 * caching_sha2_password's full path without TLS: the password and a NUL, XORed with the scramble, encrypted with
 * the server's RSA public key (PEM, as the server sends it) with OAEP padding (MySQL 8.0.5 and later).
 */
export function cachingSha2Rsa (password: string, scramble: Buffer, publicKeyPem: Buffer): Buffer {
  const plain = xor(Buffer.from(password + '\0', 'utf8'), scramble.subarray(0, 20))
  return publicEncrypt({ key: publicKeyPem, padding: constants.RSA_PKCS1_OAEP_PADDING }, plain)
}

/** mysql_clear_password and caching_sha2's full path over TLS: the password and a NUL. */
export function clearPassword (password: string): Buffer {
  return Buffer.from(password + '\0', 'utf8')
}

/** The first auth response for `plugin`; undefined when tcptee cannot answer for it. `secure`: the mirror link is TLS. */
export function authResponse (plugin: string, password: string, scramble: Buffer, secure: boolean): Buffer | undefined {
  switch (plugin) {
    case NATIVE: return nativePassword(password, scramble)
    case CACHING_SHA2: return cachingSha2Password(password, scramble)
    case ED25519: return ed25519Sign(Buffer.from(password, 'utf8'), scramble.subarray(0, 32))
    case CLEAR: return secure ? clearPassword(password) : undefined
    default: return undefined
  }
}
