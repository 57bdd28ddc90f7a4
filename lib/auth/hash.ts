import { createHash, randomBytes, timingSafeEqual } from 'node:crypto'

/** Hashes are stored only as SHA-256 digests: a leaked store does not leak the secrets. */
export function digest (hash: string): string {
  return createHash('sha256').update(hash).digest('hex')
}

/** Compared against when the user is unknown, so timing says nothing either way. */
const DUMMY = Buffer.alloc(32)

/**
 * What the store keeps for a user: the digest, and the hash's expiry (ms epoch) when it has a ttl, so one
 * read tells a login both and every instance can end the sessions at the same moment.
 */
export function authRecord (digestHex: string, expires: number | undefined): string {
  return expires === undefined ? digestHex : `${digestHex}.${expires}`
}

/** When the record's hash expires (ms epoch), or null when it does not. */
export function expiresOf (record: string): number | null {
  return record.length > 65 ? Number(record.slice(65)) : null
}

/** Constant-time check of a presented hash against a stored record (null: unknown user, never a match). */
export function matches (presented: string, record: string | null): boolean {
  const a = Buffer.from(digest(presented), 'hex')
  const b = record !== null && record.length >= 64 ? Buffer.from(record.slice(0, 64), 'hex') : DUMMY
  return timingSafeEqual(a, b.length === 32 ? b : DUMMY) && record !== null
}

/** A fresh secret: 256 random bits, base64url (43 characters). */
export function createSecret (): string {
  return randomBytes(32).toString('base64url')
}

/** Fewest distinct characters an app's secret needs: `aaaaaaaaaaaaaaaa` or `abababab…` are guessed first. */
export const MIN_DISTINCT = 6

/** Why a secret is too weak to register, or null. */
export function weakness (hash: string): string | null {
  if (new Set(hash).size < MIN_DISTINCT) return `it uses fewer than ${MIN_DISTINCT} distinct characters; use createAuth() for a random secret`
  return null
}
