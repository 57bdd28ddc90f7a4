import { createHmac, timingSafeEqual } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Metrics } from '../operations/metrics.ts'
import type { ServerEvent, ServerEventType } from './types.ts'

/** Events per request at most. */
export const MAX_BATCH = 100
/** How long the first event of a batch waits for others to join it, in ms. */
export const BATCH_WINDOW = 500
/** A request not answered in this time counts as failed and is retried, in ms. */
export const REQUEST_TIMEOUT = 5000
/** The wait before the first retry, doubling after each (with jitter), up to RETRY_MAX, in ms. */
export const RETRY_BASE = 1000
export const RETRY_MAX = 600_000

export interface WebhookSettings {
  url: string
  secret: string
  /** null: every type. */
  types: ReadonlySet<ServerEventType> | null
  retryFor: number
}

/** `sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">`, the X-Comet-Signature header. */
export function signature (secret: string, timestamp: number | string, body: string | Buffer): string {
  return 'sha256=' + createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest('hex')
}

export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>

export interface VerifyOptions {
  /** Largest difference between X-Comet-Timestamp and now, in seconds: older requests are refused (replays). @default 300 */
  tolerance?: number
}

/**
 * For a webhook receiver: whether a request came from fastify-comet with this secret, recently. Pass the
 * body exactly as received (before JSON parsing), the request headers, and the webhook's secret.
 */
export function verifyWebhook (rawBody: string | Buffer, headers: WebhookHeaders, secret: string, { tolerance = 300 }: VerifyOptions = {}): boolean {
  if (typeof secret !== 'string' || secret === '' || (typeof rawBody !== 'string' && !Buffer.isBuffer(rawBody))) return false
  const timestamp = header(headers, 'x-comet-timestamp')
  const given = header(headers, 'x-comet-signature')
  if (timestamp === undefined || given === undefined || !/^\d{1,12}$/.test(timestamp)) return false
  if (Math.abs(Date.now() / 1000 - Number(timestamp)) > tolerance) return false
  const expected = Buffer.from(signature(secret, timestamp, rawBody))
  const actual = Buffer.from(given)
  return actual.length === expected.length && timingSafeEqual(actual, expected)
}

function header (headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined
  const record = headers as Record<string, string | string[] | undefined>
  const key = Object.keys(record).find((k) => k.toLowerCase() === name)
  const value = key === undefined ? undefined : record[key]
  return Array.isArray(value) ? value[0] : value
}

interface Queued {
  event: ServerEvent
  arrived: number
  /** Called once the event was delivered or given up. */
  done: () => void
}

/**
 * One webhook on this instance: events queue here in order and go out in batches, one request at a time,
 * each retried until answered 2xx or `retryFor` has passed, so the receiver gets them in order.
 */
export class Webhook {
  readonly settings: WebhookSettings
  /** Events given up after retrying for `retryFor`, since start. */
  failed = 0
  #queue: Queued[] = []
  #running = false
  #log: FastifyBaseLogger
  #stop: AbortSignal
  #metrics: Metrics | null
  /** Where to, for logs: no query string, which may carry a token. */
  #where: string

  constructor (settings: WebhookSettings, log: FastifyBaseLogger, stop: AbortSignal, metrics: Metrics | null) {
    this.settings = settings
    this.#log = log
    this.#stop = stop
    this.#metrics = metrics
    const url = new URL(settings.url)
    this.#where = url.origin + url.pathname
  }

  wants (type: ServerEventType): boolean {
    return this.settings.types === null || this.settings.types.has(type)
  }

  /** Events queued and not yet delivered or given up. */
  get pending (): number { return this.#queue.length }

  push (event: ServerEvent, done: () => void = () => {}): void {
    this.#queue.push({ event, arrived: Date.now(), done })
    if (this.#running) return
    this.#running = true
    this.#loop().catch((err: unknown) => {
      if (!this.#stop.aborted) this.#log.error({ err, webhook: this.#where }, 'comet: webhook sender failed')
    }).finally(() => { this.#running = false })
  }

  async #loop (): Promise<void> {
    while (this.#queue.length > 0) {
      const wait = this.#queue[0]!.arrived + BATCH_WINDOW - Date.now()
      if (this.#queue.length < MAX_BATCH && wait > 0) await sleep(wait, undefined, { signal: this.#stop })
      const batch = this.#queue.slice(0, MAX_BATCH)
      await this.#deliver(batch.map((q) => q.event))
      this.#queue.splice(0, batch.length)
      for (const q of batch) q.done()
    }
  }

  /** Sends one batch until a 2xx answer, or gives it up after `retryFor` (logged and counted). */
  async #deliver (events: ServerEvent[]): Promise<void> {
    const body = JSON.stringify({ events })
    const started = Date.now()
    for (let attempt = 1; ; attempt++) {
      this.#stop.throwIfAborted()
      const timestamp = Math.floor(Date.now() / 1000)
      let failure: string
      // Not AbortSignal.any([stop, AbortSignal.timeout()]): on Node 20 a garbage collection during the
      // request can drop that signal, and the request then waits for the receiver forever
      // (nodejs/node#55428). The timer and the stop listener hold this controller strongly.
      const request = new AbortController()
      const timer = setTimeout(() => { request.abort(new DOMException('the webhook did not answer', 'TimeoutError')) }, REQUEST_TIMEOUT)
      const onStop = (): void => { request.abort(this.#stop.reason) }
      this.#stop.addEventListener('abort', onStop, { once: true })
      try {
        const res = await fetch(this.settings.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            'x-comet-timestamp': String(timestamp),
            'x-comet-signature': signature(this.settings.secret, timestamp, body)
          },
          body,
          redirect: 'manual',
          signal: request.signal
        })
        await res.body?.cancel()
        if (res.ok) return
        failure = `HTTP ${res.status}`
      } catch (err) {
        this.#stop.throwIfAborted()
        failure = request.signal.aborted ? `no answer in ${REQUEST_TIMEOUT} ms` : (err as Error).message
      } finally {
        clearTimeout(timer)
        this.#stop.removeEventListener('abort', onStop)
      }
      const delay = Math.min(RETRY_BASE * 2 ** (attempt - 1), RETRY_MAX) * (0.5 + Math.random() / 2)
      if (Date.now() + delay - started > this.settings.retryFor) {
        this.failed += events.length
        this.#metrics?.webhookGivenUp(events.length)
        this.#log.error({ webhook: this.#where, failure, attempts: attempt, events: events.length, first: events[0]!.id, failedSinceStart: this.failed },
          'comet: webhook batch given up after retrying for retryFor')
        return
      }
      this.#log.warn({ webhook: this.#where, failure, attempt, events: events.length }, 'comet: webhook request failed; retrying')
      await sleep(delay, undefined, { signal: this.#stop })
    }
  }
}
