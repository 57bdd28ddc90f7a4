/**
 * The heartbeat is spread over its interval: every key (a socket, a user, a channel) belongs to one of
 * SLICES slices, and a tick every interval / SLICES handles one slice. Each key is still visited once per
 * interval, but no tick pings every socket or refreshes every user at once (that stalled the event loop
 * for hundreds of ms with thousands of sockets).
 */
export const SLICES = 25

/** The slice of a string key (FNV-1a), stable for the key's lifetime. */
export function sliceOf (key: string): number {
  let hash = 0x811c9dc5
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193)
  return (hash >>> 0) % SLICES
}

/** Calls `tick(slice)` for slices 0, 1, … SLICES - 1, 0, … on an unref'd timer; returns the stop function. */
export function startHeartbeat (interval: number, tick: (slice: number) => void): () => void {
  let next = 0
  const timer = setInterval(() => {
    tick(next)
    next = (next + 1) % SLICES
  }, interval / SLICES)
  timer.unref()
  return () => clearInterval(timer)
}
