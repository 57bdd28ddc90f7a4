/**
 * Failed authentications, counted per client address and per user id, in memory on each instance.
 * Per address they are a budget: past `max` failures within `window` the address is refused until it
 * earns budget back. Per user id they only slow failures down (never successes), so an attacker cannot
 * lock the real user out; with hashes of 16+ random characters guessing is hopeless anyway.
 */
export class AuthLimits {
  #max: number
  #window: number
  #addresses = new Map<string, number[]>()
  #users = new Map<string, number[]>()

  constructor (max: number, window: number) {
    this.#max = max
    this.#window = window
  }

  /** Whether this address has failed too often lately. */
  blocked (address: string): boolean {
    return recent(this.#addresses.get(address), Date.now() - this.#window) >= this.#max
  }

  /** Records a failure; returns how long to wait before answering it, in ms (up to 2 s). */
  failed (address: string, userId: string): number {
    const now = Date.now()
    record(this.#addresses, address, now, this.#window, this.#max)
    const failures = record(this.#users, userId, now, this.#window, 6)
    return 2000 >> (6 - failures)
  }

  /** Forgets failures older than the window: what bounds memory. */
  sweep (): void {
    const since = Date.now() - this.#window
    for (const map of [this.#addresses, this.#users]) {
      for (const [key, times] of map) if (recent(times, since) === 0) map.delete(key)
    }
  }
}

function recent (times: number[] | undefined, since: number): number {
  if (times === undefined) return 0
  while (times.length > 0 && (times[0] as number) < since) times.shift()
  return times.length
}

/** Most keys kept per map: a flood of distinct addresses or ids evicts the oldest, memory stays bounded. */
const MAX_KEYS = 100_000

/** Appends a failure time within the window, keeping at most `keep`; returns how many are kept. */
function record (map: Map<string, number[]>, key: string, now: number, window: number, keep: number): number {
  let times = map.get(key)
  if (times === undefined) {
    if (map.size >= MAX_KEYS) map.delete(map.keys().next().value as string)
    map.set(key, times = [])
  }
  recent(times, now - window)
  times.push(now)
  if (times.length > keep) times.shift()
  return times.length
}
