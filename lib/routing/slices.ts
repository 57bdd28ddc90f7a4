/**
 * The heartbeat is spread over its interval: every key (a user, a channel) belongs to one of SLICES slices,
 * and each slice's presence is refreshed once per interval, a tick at a time. No tick pings every socket
 * or refreshes every user at once: with many sockets that would stall the event loop.
 */
export const SLICES = 100

/** The slice of a string key (FNV-1a), stable for the key's lifetime. */
export function sliceOf (key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % SLICES
}

/**
 * Members grouped by slice, so that a tick visits its own slice only, never every socket and user to pick
 * one slice's.
 */
export class Slices<T> {
  /** Created when first used: most of a small instance's SOCKET_SLICES stay empty. */
  readonly #sets: Array<Set<T> | undefined>
  #size = 0

  constructor (count = SLICES) {
    this.#sets = Array.from({ length: count }, () => undefined)
  }

  get size (): number { return this.#size }

  add (slice: number, item: T): void {
    const set = (this.#sets[slice] ??= new Set<T>())
    if (set.has(item)) return
    set.add(item)
    this.#size++
  }

  delete (slice: number, item: T): void {
    if (this.#sets[slice]?.delete(item) === true) this.#size--
  }

  of (slice: number): ReadonlySet<T> { return this.#sets[slice] ?? NONE }

  * [Symbol.iterator] (): Iterator<T> {
    for (const set of this.#sets) if (set !== undefined) yield * set
  }
}

const NONE: ReadonlySet<never> = new Set()
