import { CLOSE } from '../protocol/close-codes.ts'

export type MessageKind = 'user' | 'channel'
export const AUTH_RESULTS = ['ok', 'bad_credentials', 'expired', 'revoked', 'rate_limited', 'timeout', 'device_limit'] as const
export type AuthResult = typeof AUTH_RESULTS[number]
export const CLIENT_FRAMES = ['auth', 'subscribe', 'unsubscribe', 'ping', 'publish', 'members', 'history'] as const

/**
 * What the hot path reports. The plugin holds `Metrics | null`: with metrics and the admin page off it is
 * null, and each report costs one null check (`ctx.metrics?.delivered('user')`).
 */
export interface Metrics {
  /** A sendToUser / publish call made on this instance succeeded. */
  sent (kind: MessageKind, queued: boolean): void
  /** A message frame was written to a socket here. */
  delivered (kind: MessageKind): void
  /** Queued messages dropped because the offline queue was full, as learned when the user came back. */
  dropped (count: number): void
  auth (result: AuthResult, address: string, userId?: string | null): void
  disconnect (code: number): void
  frame (type: string): void
  /** Events of a webhook batch given up after retrying for `retryFor` (docs/events.md). */
  webhookGivenUp (events: number): void
  /** An event a listener kept throwing on, given up after its last attempt (docs/events.md). */
  listenerGivenUp (): void
}

export interface FailedAuth {
  /** The client's address. */
  address: string
  reason: Exclude<AuthResult, 'ok'>
  /** The user id the client claimed, if it got that far. */
  userId: string | null
  /** When (ms since the epoch). */
  at: number
}

/** A 10 s bucket of traffic: its start (ms) and the messages sent and delivered in it. */
export type Sample = [at: number, sent: number, delivered: number]

export const SAMPLE_MS = 10_000
/** 15 minutes of samples. */
export const SAMPLES = 90
const FAILED_AUTHS = 50
/** Close codes kept as labels; any other is counted as "other", so the label set stays bounded. */
const KNOWN_CODES = new Set<number>([1000, 1001, 1005, 1006, ...Object.values(CLOSE)])

/**
 * The plugin's counters, as plain numbers: Prometheus reads them when scraped (prometheus.ts), the admin
 * page when it asks (admin.ts). Label values are fixed sets, never a user id or a channel name.
 */
export class Recorder implements Metrics {
  readonly sentCount = { user: 0, channel: 0 }
  readonly deliveredCount = { user: 0, channel: 0 }
  queuedCount = 0
  droppedCount = 0
  webhookGivenUpCount = 0
  listenerGivenUpCount = 0
  readonly authCount = new Map<AuthResult, number>(AUTH_RESULTS.map((r) => [r, 0]))
  readonly disconnects = new Map<string, number>()
  readonly frames = new Map<string, number>(CLIENT_FRAMES.map((t) => [t, 0]))
  /** The newest last. */
  readonly failedAuths: FailedAuth[] = []
  /** The newest last; the one being filled is not in it. */
  readonly samples: Sample[] = []
  #sampleStart = Date.now()
  #sampledSent = 0
  #sampledDelivered = 0
  #timer: NodeJS.Timeout | undefined

  sent (kind: MessageKind, queued: boolean): void {
    this.sentCount[kind]++
    if (queued) this.queuedCount++
  }

  delivered (kind: MessageKind): void { this.deliveredCount[kind]++ }

  dropped (count: number): void { this.droppedCount += count }

  webhookGivenUp (events: number): void { this.webhookGivenUpCount += events }

  listenerGivenUp (): void { this.listenerGivenUpCount++ }

  auth (result: AuthResult, address: string, userId: string | null = null): void {
    this.authCount.set(result, (this.authCount.get(result) ?? 0) + 1)
    if (result === 'ok') return
    this.failedAuths.push({ address, reason: result, userId, at: Date.now() })
    if (this.failedAuths.length > FAILED_AUTHS) this.failedAuths.shift()
  }

  disconnect (code: number): void {
    const label = KNOWN_CODES.has(code) ? String(code) : 'other'
    this.disconnects.set(label, (this.disconnects.get(label) ?? 0) + 1)
  }

  frame (type: string): void {
    const count = this.frames.get(type)
    if (count !== undefined) this.frames.set(type, count + 1)
  }

  get totalSent (): number { return this.sentCount.user + this.sentCount.channel }
  get totalDelivered (): number { return this.deliveredCount.user + this.deliveredCount.channel }

  /** Starts taking a traffic sample every SAMPLE_MS, for the admin page's chart and rates. */
  startSampling (): void {
    // Aligned to the clock, so the samples of every instance fall into the same 10 s buckets.
    this.#timer = setTimeout(() => {
      this.#sample()
      this.#timer = setInterval(() => this.#sample(), SAMPLE_MS).unref()
    }, SAMPLE_MS - Date.now() % SAMPLE_MS).unref()
  }

  stop (): void { clearTimeout(this.#timer) }

  #sample (): void {
    const sent = this.totalSent
    const delivered = this.totalDelivered
    const now = Date.now()
    const end = now - now % SAMPLE_MS
    this.samples.push([end - SAMPLE_MS, sent - this.#sampledSent, delivered - this.#sampledDelivered])
    if (this.samples.length > SAMPLES) this.samples.shift()
    this.#sampleStart = end
    this.#sampledSent = sent
    this.#sampledDelivered = delivered
  }

  /** Messages per second now: over the current sample and the one before it, so it never reads 0 after a tick. */
  rates (): { sent: number, delivered: number } {
    const now = Date.now()
    const last = this.samples.at(-1)
    const from = last?.[0] ?? this.#sampleStart
    const seconds = Math.max(1, (now - from) / 1000)
    return {
      sent: round((this.totalSent - this.#sampledSent + (last?.[1] ?? 0)) / seconds),
      delivered: round((this.totalDelivered - this.#sampledDelivered + (last?.[2] ?? 0)) / seconds)
    }
  }
}

function round (n: number): number { return Math.round(n * 10) / 10 }
