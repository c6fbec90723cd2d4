import { createHash } from 'node:crypto'

/**
 * MariaDB's `client_ed25519` signature. MariaDB signs the server's 32-byte scramble with Ed25519 (RFC 8032), but its
 * secret key is SHA-512 of the password itself, of any length (MariaDB `plugin/auth_ed25519/ref10/sign.c`,
 * `crypto_sign(sm, m, pw, pwlen)`: `az = SHA512(pw)`, clamped; nonce `SHA512(az[32..64] || m)`). Node's crypto only
 * takes a 32-byte seed and hashes it, so it cannot make this key: the curve arithmetic is done here with BigInt
 * (a login is one scalar multiplication for the key and one for R, a few milliseconds; not constant-time, which
 * does not matter for a key tcptee holds in memory anyway).
 */

const P = 2n ** 255n - 19n
const L = 2n ** 252n + 27742317777372353535851937790883648493n
const D = mod(-121665n * inverse(121666n))
const GX = 15112221349535400772501151409588531511454012693041857206046113283949847762202n
const GY = 46316835694926478169428394003475163141307993866256225615783033603165251855960n

interface Point { x: bigint, y: bigint, z: bigint, t: bigint }

function mod (a: bigint, m = P): bigint {
  const r = a % m
  return r >= 0n ? r : r + m
}

function pow (base: bigint, exp: bigint): bigint {
  let r = 1n
  let b = mod(base)
  let e = exp
  while (e > 0n) {
    if ((e & 1n) === 1n) r = mod(r * b)
    b = mod(b * b)
    e >>= 1n
  }
  return r
}

function inverse (a: bigint): bigint {
  return pow(a, P - 2n)
}

const BASE: Point = { x: GX, y: GY, z: 1n, t: mod(GX * GY) }
const ZERO: Point = { x: 0n, y: 1n, z: 1n, t: 0n }

// Extended twisted Edwards coordinates, a = -1 (add-2008-hwcd-3).
function add (p: Point, q: Point): Point {
  const a = mod((p.y - p.x) * (q.y - q.x))
  const b = mod((p.y + p.x) * (q.y + q.x))
  const c = mod(2n * D * p.t * q.t)
  const d = mod(2n * p.z * q.z)
  const e = b - a
  const f = d - c
  const g = d + c
  const h = b + a
  return { x: mod(e * f), y: mod(g * h), z: mod(f * g), t: mod(e * h) }
}

function multiply (k: bigint): Point {
  let r = ZERO
  let q = BASE
  let e = k
  while (e > 0n) {
    if ((e & 1n) === 1n) r = add(r, q)
    q = add(q, q)
    e >>= 1n
  }
  return r
}

function encodePoint (p: Point): Buffer {
  const zi = inverse(p.z)
  const x = mod(p.x * zi)
  const y = mod(p.y * zi)
  const out = Buffer.alloc(32)
  let v = y
  for (let i = 0; i < 32; i++) { out[i] = Number(v & 0xffn); v >>= 8n }
  if ((x & 1n) === 1n) out[31]! |= 0x80
  return out
}

function littleEndian (b: Buffer): bigint {
  let v = 0n
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!)
  return v
}

function scalarBytes (s: bigint): Buffer {
  const out = Buffer.alloc(32)
  let v = s
  for (let i = 0; i < 32; i++) { out[i] = Number(v & 0xffn); v >>= 8n }
  return out
}

function sha512 (...parts: Buffer[]): Buffer {
  const h = createHash('sha512')
  for (const p of parts) h.update(p)
  return h.digest()
}

/** The 64-byte signature of `message` (the server's scramble) with the key MariaDB derives from `password`. */
export function ed25519Sign (password: Buffer, message: Buffer): Buffer {
  const az = sha512(password)
  az[0]! &= 248
  az[31]! &= 63
  az[31]! |= 64
  const a = littleEndian(az.subarray(0, 32))
  const publicKey = encodePoint(multiply(a))
  const r = mod(littleEndian(sha512(az.subarray(32, 64), message)), L)
  const R = encodePoint(multiply(r))
  const k = mod(littleEndian(sha512(R, publicKey, message)), L)
  const s = mod(r + k * a, L)
  return Buffer.concat([R, scalarBytes(s)])
}

/** The public key MariaDB stores for `password` (what `ed25519_password('...')` returns, base64 without padding). */
export function ed25519PublicKey (password: Buffer): Buffer {
  const az = sha512(password)
  az[0]! &= 248
  az[31]! &= 63
  az[31]! |= 64
  return encodePoint(multiply(littleEndian(az.subarray(0, 32))))
}
