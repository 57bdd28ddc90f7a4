import type { Store } from '../store/types.ts'

/** An attempt within the budget: its place in it, and the ms left in the address's window. */
export interface Attempt {
  count: number
  left: number
}

/**
 * Limits on authentication. Per client address, attempts are a budget kept in the store (so shared by
 * every instance on Redis): an attempt counts from the moment its frame arrives, in parallel with the
 * digest read, and is taken back when it succeeds; past `max` within the window, every attempt from the
 * address is refused without being judged, a correct secret too, and after failures its upgrades get 429,
 * until the window moves on. Per user
 * id, failures are only answered later and later (never successes), so an attacker cannot lock the real
 * user out; with secrets of 16+ random characters guessing is hopeless anyway.
 */
export class AuthLimits {
  #store: Store
  #max: number
  #window: number
  /** Addresses known here to be over the budget, until their window ends: the upgrade check, no round trip. */
  #blocked = new Map<string, number>()
  #users = new Map<string, number[]>()

  constructor (store: Store, max: number, window: number) {
    this.#store = store
    this.#max = max
    this.#window = window
  }

  /** Whether this address is known to be over its budget (checked at the upgrade). */
  blocked (address: string): boolean {
    const until = this.#blocked.get(address)
    if (until === undefined) return false
    if (until > Date.now()) return true
    this.#blocked.delete(address)
    return false
  }

  /**
   * Counts an attempt. Resolves to its place in the address's budget (attempts judged and not forgiven:
   * failures, and attempts in flight), or null when it is over the budget: it is then not judged, and taken
   * back at once, so a crowd of correct logins from one address (a NAT) is spread out, never locked out.
   */
  async attempt (address: string): Promise<Attempt | null> {
    const [count, left] = await this.#store.authAttempt(address, this.#window)
    if (count <= this.#max) return { count, left }
    this.#store.authForgive(address).catch(() => {})
    return null
  }

  /** The attempt succeeded: it does not count against the address. */
  async succeeded (address: string): Promise<void> {
    await this.#store.authForgive(address)
  }

  /**
   * The attempt failed: it stays counted. Once failures may fill the budget, the address's upgrades are
   * refused here (429) until its window ends. Returns how long to wait before answering, in ms (up to 2 s):
   * failures for one user id are answered later and later.
   */
  failed (address: string, userId: string, attempt: Attempt): number {
    if (attempt.count >= this.#max) {
      if (!this.#blocked.has(address)) evictFor(this.#blocked)
      this.#blocked.set(address, Date.now() + Math.max(attempt.left, 0))
    }
    const now = Date.now()
    let times = this.#users.get(userId)
    if (times === undefined) {
      evictFor(this.#users)
      this.#users.set(userId, times = [])
    }
    recent(times, now - this.#window)
    times.push(now)
    if (times.length > 6) times.shift()
    return 2000 >> (6 - times.length)
  }

  /** Forgets what the window has passed: what bounds memory. */
  sweep (): void {
    const now = Date.now()
    for (const [address, until] of this.#blocked) if (until <= now) this.#blocked.delete(address)
    for (const [userId, times] of this.#users) if (recent(times, now - this.#window) === 0) this.#users.delete(userId)
  }
}

function recent (times: number[], since: number): number {
  while (times.length > 0 && (times[0] as number) < since) times.shift()
  return times.length
}

/** Most keys kept per map: a flood of distinct addresses or ids evicts the oldest, memory stays bounded. */
const MAX_KEYS = 100_000

function evictFor (map: Map<string, unknown>): void {
  if (map.size >= MAX_KEYS) map.delete(map.keys().next().value as string)
}
