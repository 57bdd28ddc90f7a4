/**
 * The memory stores' record of idempotency keys: what the first call returned, until it expires. Swept
 * by the heartbeat, so keys never seen again leave nothing behind.
 */
export class OnceRecord<T> {
  #entries = new Map<string, { result: T, expires: number }>()

  get (key: string, now: number): T | undefined {
    const entry = this.#entries.get(key)
    if (entry === undefined) return undefined
    if (entry.expires > now) return entry.result
    this.#entries.delete(key)
    return undefined
  }

  set (key: string, result: T, expires: number): void {
    this.#entries.set(key, { result, expires })
  }

  sweep (now: number): void {
    for (const [key, entry] of this.#entries) if (entry.expires <= now) this.#entries.delete(key)
  }
}
