import type { Bus, Routed } from './bus.ts'
import type { ChannelStore } from './channels.ts'
import type { UserStore } from './users.ts'

export type { BusHandlers, Control, Once, Routed } from './bus.ts'
export type { AttachResult, AuthProof, CatchUp, SendResult, UserStatus } from './users.ts'

/**
 * Everything instances share, behind one interface with two implementations: memory (one instance) and
 * Redis (any number), split by concern: the bus (bus.ts), users (users.ts) and channels (channels.ts).
 * `device` ids are `<attach ms>.<instance id>.<n>`, so the oldest device sorts first.
 */
export interface Store extends Bus, UserStore {
  /** Channels: publishing with history, presence sets and counts (lib/store/channels.ts). */
  readonly channels: ChannelStore
  /** Resolves when the store answers (Redis: both connections); the health check. */
  ping (): Promise<void>
  /** For the admin page: this instance's report (JSON), kept for `ttl` ms unless reported again; null removes it. */
  report (instance: string, report: string | null, ttl: number): Promise<void>
  /** Every instance's report that has not lapsed. */
  reports (): Promise<string[]>
  close (): Promise<void>
}

export interface StoreSettings {
  keyPrefix: string
  /** What follows a message's id: the store routes and keeps `head + id + messageTail`. */
  messageTail: string
  /** Channels named `<statusChannel><user id>` carry that user's status: Redis routes them with the user's keys. */
  statusChannel: string
  maxDevices: number
  evictOldest: boolean
  queue: { maxMessages: number, ttl: number }
  /** Every message is kept this long / this many for devices that resume (size 0: no log). */
  resume: { size: number, ttl: number }
  /** How long a device counts as present without a refresh (3 × heartbeatInterval). */
  presenceTtl: number
  /** How long a user whose last device left stays online (channels' presenceGrace). */
  presenceGrace: number
  lastSeenTtl: number
  /** How long a revocation is remembered for tokens, in ms (`jwt.revocationTtl`, 7 days by default). */
  revocationTtl?: number
}

/**
 * For `user_status_<id>` a device counts while it lapses after this: refreshed within the last two
 * heartbeats (a live instance refreshes every one), so a crashed instance's users go offline within three,
 * the sweep included — the bound a channel's presence entries keep too. Routing counts a device until it
 * lapses (presenceTtl, three heartbeats).
 */
export function freshAfter (now: number, settings: StoreSettings): number {
  return now + settings.presenceTtl / 3
}

/** Ids are ≥ send time (ms) × 1000 and > the previous id: increasing per user even across restarts and expiry. */
export function nextId (last: number, now: number): number {
  return Math.max(last + 1, now * 1000)
}

/** Parses the `<id>|<frame>` form messages take in Redis and on the bus. */
export function parseRouted (entry: Buffer): Routed {
  const bar = entry.indexOf(124)
  return { id: Number(entry.toString('latin1', 0, bar)), frame: entry.subarray(bar + 1) }
}

export function deviceAge (device: string): number {
  return Number(device.slice(0, device.indexOf('.')))
}
