/** A token bucket: `burst` tokens at most, refilled at `rate` per second; no timer, computed on take. */
export class TokenBucket {
  #tokens: number
  #at: number
  readonly #rate: number
  readonly #burst: number

  constructor (rate: number, burst: number, now = Date.now()) {
    this.#rate = rate
    this.#burst = burst
    this.#tokens = burst
    this.#at = now
  }

  take (now = Date.now()): boolean {
    this.#tokens = Math.min(this.#burst, this.#tokens + (now - this.#at) * this.#rate / 1000)
    this.#at = now
    if (this.#tokens < 1) return false
    this.#tokens -= 1
    return true
  }
}
