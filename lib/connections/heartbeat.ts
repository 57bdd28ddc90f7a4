/**
 * The heartbeat is spread over its interval: every key (a socket, a user, a channel) belongs to one of
 * SLICES slices, and each slice is handled once per interval, a few slices per tick. No tick pings every
 * socket or refreshes every user at once: with 20,000 sockets that stalled the event loop for hundreds of
 * ms.
 */
export const SLICES = 1000

/**
 * About how many sockets a tick handles. A tick's work comes in one burst (a ping is a socket write, the
 * refreshes one script), and each tick also costs a fixed wake-up and Redis round trip: ticks sized to
 * ~200 sockets held the loop ~30 ms (p99 at 20,000 sockets 31-33 ms; 11-15 ms at ~20), while ticks of
 * ~3 sockets doubled the idle CPU at 3,000 sockets per instance.
 */
const TICK_SOCKETS = 32

/** Shortest time between wake-ups; a short interval handles more slices per tick instead. */
const MIN_TICK = 10

/** The slice of a string key (FNV-1a), stable for the key's lifetime. */
export function sliceOf (key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % SLICES
}

/**
 * Members grouped by slice, so that a tick visits its own slice only: iterating every socket and user to
 * pick one slice's stalled the loop for 75 ms per tick at 20,000 sockets.
 */
export class Slices<T> {
  readonly #sets: Array<Set<T>> = Array.from({ length: SLICES }, () => new Set<T>())
  #size = 0

  get size (): number { return this.#size }

  add (slice: number, item: T): void {
    const set = this.#sets[slice]!
    if (set.has(item)) return
    set.add(item)
    this.#size++
  }

  delete (slice: number, item: T): void {
    if (this.#sets[slice]!.delete(item)) this.#size--
  }

  of (slice: number): ReadonlySet<T> { return this.#sets[slice]! }

  * [Symbol.iterator] (): Iterator<T> {
    for (const set of this.#sets) yield * set
  }
}

/**
 * Calls `tick(slice)` for slices 0, 1, … SLICES - 1, 0, … so that each comes once per interval. Slices fall
 * due evenly over the interval; they are handled once a tick's worth is due, TICK_SOCKETS of the sockets
 * there are now (`sockets()`), so ticks follow the number of sockets as it changes.
 */
export function startHeartbeat (interval: number, sockets: () => number, tick: (slice: number) => void): () => void {
  let next = 0
  let roundStart = Date.now()
  let timer: NodeJS.Timeout
  const wake = (): void => {
    const perTick = Math.min(SLICES, Math.ceil(SLICES * TICK_SOCKETS / Math.max(1, sockets())))
    const due = Math.min(SLICES, Math.floor((Date.now() - roundStart) / interval * SLICES))
    if (due === SLICES || due - next >= perTick) {
      while (next < due) tick(next++)
      if (next === SLICES) {
        next = 0
        roundStart += interval
      }
    }
    // Twice per tick's worth of slices: an idle instance wakes twice per interval, a busy one every few ms.
    timer = setTimeout(wake, Math.max(MIN_TICK, interval * perTick / SLICES / 2))
    timer.unref()
  }
  timer = setTimeout(wake, MIN_TICK)
  timer.unref()
  return () => clearTimeout(timer)
}
