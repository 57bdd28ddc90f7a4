/**
 * The heartbeat is spread over its interval: every key (a socket, a user, a channel) belongs to one of
 * SLICES slices, and each slice is handled once per interval, a tick at a time. No tick pings every socket
 * or refreshes every user at once: with 20,000 sockets that stalled the event loop for hundreds of ms.
 */
export const SLICES = 100

/** Shortest time between ticks; a short interval handles several slices per tick instead. */
const MIN_TICK = 10

/** Sockets pinged in a row before I/O gets a turn (see spread). */
export const PING_CHUNK = 16

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

/** Calls `tick(slice)` for slices 0, 1, … SLICES - 1, 0, … so that each comes once per interval. */
export function startHeartbeat (interval: number, tick: (slice: number) => void): () => void {
  const ticks = Math.max(1, Math.min(SLICES, Math.floor(interval / MIN_TICK)))
  const perTick = Math.ceil(SLICES / ticks)
  let next = 0
  const timer = setInterval(() => {
    for (let i = 0; i < perTick && next < SLICES; i++) tick(next++)
    if (next >= SLICES) next = 0
  }, interval / ticks)
  timer.unref()
  return () => clearInterval(timer)
}

/**
 * Calls `fn` for every item, PING_CHUNK at a time with the event loop's I/O in between: a ping is a
 * syscall (~40 µs on the benchmark machine), and a slice of 200 sockets pinged in a row held deliveries
 * up for 8 ms. Items added or removed meanwhile are visited or skipped as a Set's iterator does.
 */
export function spread<T> (items: Iterable<T>, fn: (item: T) => void): void {
  const it = items[Symbol.iterator]()
  const step = (): void => {
    for (let i = 0; i < PING_CHUNK; i++) {
      const next = it.next()
      if (next.done === true) return
      fn(next.value)
    }
    setImmediate(step)
  }
  step()
}
