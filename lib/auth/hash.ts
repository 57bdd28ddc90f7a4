import { createHash, timingSafeEqual } from 'node:crypto'

/** Hashes are stored only as SHA-256 digests: a leaked store does not leak the secrets. */
export function digest (hash: string): string {
  return createHash('sha256').update(hash).digest('hex')
}

/** Constant-time check of a presented hash against a stored digest. */
export function matches (presented: string, storedDigest: string | null): boolean {
  const a = Buffer.from(digest(presented), 'hex')
  // Compare against a dummy of the same size when the user is unknown, so timing says nothing either way.
  const b = storedDigest !== null && storedDigest.length === 64 ? Buffer.from(storedDigest, 'hex') : Buffer.alloc(32)
  return timingSafeEqual(a, b) && storedDigest !== null
}
