import { SLICES } from '../routing/slices.ts'

/**
 * Sockets are pinged in slices ten times finer, and a tick takes as many as hold about PING_CHUNK sockets:
 * pongs then come back as a trickle, not as bursts of a few hundred that hold deliveries up, and an
 * instance with few sockets ticks only every interval / SLICES (docs/architecture.md, the heartbeat).
 */
export const SOCKET_SLICES = SLICES * 10

/** Shortest time between ticks; a short interval handles more slices per tick instead. */
const MIN_TICK = 10

/** Sockets pinged in a row before I/O gets a turn (see spread). */
export const PING_CHUNK = 16

const PER_SLICE = SOCKET_SLICES / SLICES

/**
 * Calls `ping(s)` for socket slices 0, 1, … SOCKET_SLICES - 1, 0, … and `refresh(slice)` for slices
 * 0, 1, … SLICES - 1, 0, …, each once per interval; slice k is refreshed just before socket slice 10k is
 * pinged. A tick takes enough socket slices for about PING_CHUNK of `sockets()` (at most a refresh slice's
 * worth), and waits in proportion.
 */
export function startHeartbeat (interval: number, sockets: () => number, ping: (socketSlice: number) => void, refresh: (slice: number) => void): () => void {
  const fewest = Math.ceil(SOCKET_SLICES * MIN_TICK / interval)
  let next = 0
  let slices = 0
  let timer: NodeJS.Timeout | undefined
  const schedule = (): void => {
    const perSlice = sockets() / SOCKET_SLICES
    // At most one refresh slice a tick, so a count that grows is seen within interval / SLICES.
    slices = Math.min(SOCKET_SLICES - next, Math.max(fewest, Math.min(PER_SLICE, Math.ceil(PING_CHUNK / perSlice))))
    timer = setTimeout(tick, interval * slices / SOCKET_SLICES).unref()
  }
  const tick = (): void => {
    for (const end = next + slices; next < end; next++) {
      if (next % PER_SLICE === 0) refresh(next / PER_SLICE)
      ping(next)
    }
    if (next >= SOCKET_SLICES) next = 0
    schedule()
  }
  schedule()
  return () => clearTimeout(timer)
}

/**
 * Calls `fn` for every item, PING_CHUNK at a time with the event loop's I/O in between: a ping is a
 * syscall, and a whole slice pinged in a row would hold deliveries up. Items added or removed meanwhile
 * are visited or skipped as a Set's iterator does.
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
