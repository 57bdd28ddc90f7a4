import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from '../operations/metrics.ts'
import type { ServerEvent, ServerEventListener, ServerEventType } from './types.ts'

/** Deliveries of one event to a listener that keeps throwing, the first included. */
export const ATTEMPTS = 5
/** The wait before the second attempt; it doubles for each one after (with jitter). */
export const RETRY_BASE = 100

/** The app's listeners on this instance, by type; each event runs every listener of its type. */
export class Listeners {
  #byType = new Map<ServerEventType, Set<ServerEventListener>>()
  #log: FastifyBaseLogger
  #stop: AbortSignal
  #metrics: Metrics | null

  constructor (log: FastifyBaseLogger, stop: AbortSignal, metrics: Metrics | null) {
    this.#log = log
    this.#stop = stop
    this.#metrics = metrics
  }

  add (type: ServerEventType, listener: ServerEventListener): void {
    let set = this.#byType.get(type)
    if (set === undefined) this.#byType.set(type, (set = new Set()))
    set.add(listener)
  }

  remove (type: ServerEventType, listener: ServerEventListener): void {
    const set = this.#byType.get(type)
    set?.delete(listener)
    if (set?.size === 0) this.#byType.delete(type)
  }

  has (type: ServerEventType): boolean { return this.#byType.has(type) }
  get size (): number { return this.#byType.size }

  /**
   * Runs the event's listeners; a listener that throws gets it again with backoff, at most ATTEMPTS times
   * in all, then it is logged. Resolves when every listener settled, or rejects once shutdown begins:
   * then the event stays unacknowledged and another instance gets it.
   */
  async run (event: ServerEvent): Promise<void> {
    const listeners = [...this.#byType.get(event.type) ?? []]
    await Promise.all(listeners.map(async (listener) => await this.#attempt(listener, event)))
  }

  async #attempt (listener: ServerEventListener, event: ServerEvent): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      this.#stop.throwIfAborted()
      try {
        await listener(event as never)
        return
      } catch (err) {
        if (attempt === ATTEMPTS) {
          this.#metrics?.listenerGivenUp()
          this.#log.error({ err, event: event.id, type: event.type, attempts: attempt }, 'comet: event listener failed every attempt; event given up')
          return
        }
        this.#log.warn({ err, event: event.id, type: event.type, attempt }, 'comet: event listener threw; retrying')
        await sleep(RETRY_BASE * 2 ** (attempt - 1) * (0.75 + Math.random() / 2), undefined, { signal: this.#stop })
      }
    }
  }
}

/**
 * Runs work in order per key (a user's or a channel's events), different keys concurrently. `size` is
 * the work not yet settled, for backpressure.
 */
export class Ordered {
  #tails = new Map<string, Promise<void>>()
  size = 0

  push (key: string, work: () => Promise<void>): Promise<void> {
    this.size++
    const run = (this.#tails.get(key) ?? Promise.resolve()).then(work).finally(() => {
      this.size--
      if (this.#tails.get(key) === tail) this.#tails.delete(key)
    })
    // The chain goes on after a failure; the caller sees this step's own outcome.
    const tail = run.catch(() => {})
    this.#tails.set(key, tail)
    return run
  }

  async drained (): Promise<void> {
    await Promise.allSettled([...this.#tails.values()])
  }
}
