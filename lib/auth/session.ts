import type { Claims, JwtSettings, Verified } from './jwt.ts'
import { TokenRejected } from './jwt.ts'

/** The longest setTimeout delay; a later expiry is reached in steps. */
const MAX_DELAY = 2 ** 31 - 1

export type RefreshResult = { ok: true, exp: number | null } | { ok: false, code: 'invalid_token' | 'unavailable', message: string }

/**
 * The life of a socket that logged in with a token: it ends when the token expires, unless a `refresh`
 * with a later token came first. A refresh that arrived before the expiry is judged in full, even when
 * its check (the revocation read) ends after it: the expiry waits for the verdict.
 */
export class TokenSession {
  claims: Claims
  readonly #userId: string
  /** ms; null for a token without `exp`. */
  #expires: number | null
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  #checking: Promise<RefreshResult> | null = null
  readonly #expire: () => void

  constructor (verified: Verified, expire: () => void) {
    this.claims = verified.claims
    this.#userId = verified.userId
    this.#expires = verified.expires
    this.#expire = expire
    this.#schedule()
  }

  /** Checks a refresh token: same `sub`, a later `exp`, not revoked. */
  refresh (token: string, jwt: JwtSettings, revokedAt: (userId: string) => Promise<number | null>): Promise<RefreshResult> {
    if (this.#expires !== null && Date.now() >= this.#expires) return Promise.resolve({ ok: false, code: 'invalid_token', message: 'the token has already expired' })
    const checking = this.#check(token, jwt, revokedAt)
    this.#checking = checking
    return checking
  }

  stop (): void {
    this.#stopped = true
    clearTimeout(this.#timer)
    this.#timer = undefined
  }

  async #check (token: string, jwt: JwtSettings, revokedAt: (userId: string) => Promise<number | null>): Promise<RefreshResult> {
    let result: RefreshResult
    try {
      const next = await jwt.verify(token)
      if (next.userId !== this.#userId) throw new TokenRejected('the token is for another user', false, '')
      // No `exp` is never: a token without one outlives any that has one.
      if ((next.expires ?? Infinity) <= (this.#expires ?? Infinity)) throw new TokenRejected('the token must expire later than the current one', false, '')
      let revoked: number | null
      try {
        revoked = await revokedAt(next.userId)
      } catch {
        result = { ok: false, code: 'unavailable', message: 'could not check the token now; retry later' }
        this.#checking = null
        return result
      }
      if (revoked !== null && next.issuedAt < revoked) throw new TokenRejected('the token was revoked', false, '')
      this.claims = next.claims
      this.#expires = next.expires
      result = { ok: true, exp: typeof next.claims.exp === 'number' ? next.claims.exp : null }
    } catch (err) {
      result = { ok: false, code: 'invalid_token', message: err instanceof TokenRejected ? err.message : 'invalid token' }
    }
    this.#checking = null
    if (result.ok) this.#schedule()
    return result
  }

  #schedule (): void {
    clearTimeout(this.#timer)
    this.#timer = undefined
    if (this.#expires === null || this.#stopped) return
    this.#timer = setTimeout(() => this.#due(), Math.min(MAX_DELAY, Math.max(0, this.#expires - Date.now())))
  }

  #due (): void {
    this.#timer = undefined
    if (this.#stopped) return
    if (this.#checking !== null) {
      // The refresh being checked decides: a success has scheduled the new expiry by then.
      this.#checking.then(() => { if (this.#timer === undefined) this.#due() }, () => {})
      return
    }
    if (this.#expires !== null && this.#expires > Date.now()) return this.#schedule()
    this.#expire()
  }
}
