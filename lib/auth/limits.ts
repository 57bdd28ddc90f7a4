import type { Store } from '../store/types.ts'

/** How long an attempt waits for room among the attempts in flight before it is refused. */
const ADMIT_WAIT = 5000
/** Pause between two tries at admitting it. */
const ADMIT_RETRY = 25

/**
 * Limits on authentication. Per client address, failures are a budget kept in the store (so shared by
 * every instance on Redis): an attempt is admitted only while the failures and the attempts already in
 * flight leave room under `max`, in the same round trip as the digest read, so parallel guesses cannot all
 * be judged before their failures count; a crowd of correct logins from one address (a NAT) only waits its
 * turn. Once failures fill the budget, every attempt from the address is refused, a correct secret too, and
 * its upgrades get 429, until the window moves on. Per user id, failures are only answered later and later
 * (never successes), so an attacker cannot lock the real user out; with secrets of 16+ random characters
 * guessing is hopeless anyway.
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
   * Admits an attempt: resolves to true once it may be judged (it is then in flight until `settle`), false
   * when the address's failures fill its budget (or no room came within a few seconds).
   */
  async admit (address: string): Promise<boolean> {
    const deadline = Date.now() + ADMIT_WAIT
    for (;;) {
      const [admitted, failures, left] = await this.#store.authAttempt(address, this.#max, this.#window)
      if (admitted) return true
      if (failures >= this.#max) {
        this.#block(address, left)
        return false
      }
      if (Date.now() > deadline) return false
      await new Promise((resolve) => setTimeout(resolve, ADMIT_RETRY * (1 + Math.random())))
    }
  }

  /** An admitted attempt ended; a failure stays counted for the address. */
  async settle (address: string, failed: boolean): Promise<void> {
    const [failures, left] = await this.#store.authSettle(address, failed)
    if (failed && failures >= this.#max) this.#block(address, left)
  }

  /** Refuses the address's upgrades here until its window ends. */
  #block (address: string, left: number): void {
    if (!this.#blocked.has(address)) evictFor(this.#blocked)
    this.#blocked.set(address, Date.now() + Math.max(left, 0))
  }

  /** Records a failure for a user id; returns how long to wait before answering it, in ms (up to 2 s). */
  failed (userId: string): number {
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
