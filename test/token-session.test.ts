import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { createSigner } from 'fast-jwt'
import { normalizeJwt } from '../lib/auth/jwt.ts'
import { TokenSession } from '../lib/auth/session.ts'

const SECRET = 'a-test-secret-of-thirty-two-bytes!'
const sign = createSigner({ key: SECRET })
const RUNS = Number(process.env['REPEAT'] ?? 25)

/**
 * A refresh races the expiry: the expiry timer may fire while the refresh's revocation read is still out,
 * in any order the scheduler picks. A refresh that arrived before the expiry is judged in full; the
 * socket then lives on (valid refresh) or closes once (invalid one), never both, never twice.
 */
test('a refresh racing the expiry: refreshed and kept, or expired once, never both', async () => {
  const jwt = normalizeJwt({ secret: SECRET })!
  await fc.assert(fc.asyncProperty(
    fc.scheduler(),
    fc.integer({ min: 0, max: 40 }),
    fc.integer({ min: 0, max: 40 }),
    fc.constantFrom('valid', 'other-user', 'earlier', 'revoked'),
    async (s, sendAt, checkFor, kind) => {
      const timers = pendingTimers()
      const now = Date.now()
      let expired = 0
      const session = new TokenSession({ userId: 'u', claims: { sub: 'u' }, expires: now + 20, issuedAt: now - 1000 }, () => { expired++ })
      const later = Math.floor(now / 1000) + 600
      const token = kind === 'other-user' ? sign({ sub: 'x', exp: later }) : kind === 'earlier' ? sign({ sub: 'u', exp: Math.floor(now / 1000) - 1 }) : sign({ sub: 'u', exp: later })
      const revokedAt = s.scheduleFunction(async (_userId: string) => kind === 'revoked' ? Date.now() + 5000 : null)
      await sleep(sendAt)
      const before = Date.now()
      const result = session.refresh(token, jwt, revokedAt)
      const after = Date.now()
      // Real time passes while the read is out: the expiry is due meanwhile, or not.
      await sleep(checkFor)
      await s.waitAll()
      const verdict = await result
      await sleep(30)
      session.stop()
      assert.equal(pendingTimers(), timers, 'a stopped session leaves no timer behind')
      if (verdict.ok) {
        assert.equal(kind, 'valid')
        assert.ok(before < now + 20, 'only a refresh sent before the expiry can succeed')
        assert.equal(verdict.exp, later)
        assert.equal(expired, 0, 'a refreshed session does not expire at the old exp')
      } else {
        assert.ok(kind !== 'valid' || after >= now + 20, 'a valid refresh sent before the expiry succeeds')
        assert.equal(verdict.code, 'invalid_token')
        assert.equal(expired, 1, 'a session not refreshed expires exactly once')
      }
    }
  ), { numRuns: RUNS })
})

function pendingTimers (): number {
  return process.getActiveResourcesInfo().filter((kind) => kind === 'Timeout').length
}
