/** Calls in flight at once (see paced). */
const CHUNK = 16

/**
 * Runs `fn` for every item, CHUNK at a time, the next ones once those settled; rejects with the first
 * failure after all ran. For background work in bulk, such as a heartbeat's: Redis runs nothing else
 * during a script, so a heartbeat slice's calls written at once made every send issued meanwhile wait
 * behind all of them.
 */
export async function paced<T> (items: Iterable<T>, fn: (item: T) => Promise<unknown>): Promise<void> {
  let failure: unknown
  let chunk: Array<Promise<unknown>> = []
  for (const item of items) {
    if (chunk.length === CHUNK) {
      await Promise.all(chunk)
      chunk = []
    }
    chunk.push(fn(item).catch((err: unknown) => { failure ??= err }))
  }
  await Promise.all(chunk)
  if (failure !== undefined) throw failure
}
