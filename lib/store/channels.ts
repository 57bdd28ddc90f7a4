import type { BusHandlers, Once } from './bus.ts'

/** A channel's history: the newest `size` messages, each kept `ttl` ms. */
export interface HistorySettings {
  size: number
  ttl: number
}

/** What a presence set publishes on join / leave: `joinHead + userId + tail`, `leaveHead + userId + tail`. */
export interface PresenceFrames {
  joinHead: string
  leaveHead: string
  tail: string
}

/**
 * A channel's presence set: who is subscribed, across instances, crash-safe. Each entry (a subscribed
 * connection) lapses unless its instance refreshes it; a user is a member while they have an entry, and
 * for `grace` ms after their last one went. Joins and leaves are decided inside the store, atomically, so
 * exactly one instance emits each event.
 */
export interface PresenceSet {
  /** The channel whose subscribers get the events; the set's keys share its hash tag. */
  channel: string
  /** How long an entry lives without a refresh, in ms. */
  ttl: number
  /** How long a user with no entry left stays a member, in ms. */
  grace: number
  /** Frames sent to the channel on join / leave; null for sets that only count. */
  events: PresenceFrames | null
}

/** One entry: its user (null for anonymous connections, which count but are never members) and its id. */
export type PresenceEntry = [userId: string | null, entry: string]

export interface HistoryRead {
  recovered: boolean
  /** Complete message frames, oldest first. */
  frames: string[]
}

/** The channel half of the store: publishing with history and sender, presence sets, counts. */
export interface ChannelStore {
  /**
   * Publishes `head + id + '"}'` to the channel's subscribers on every instance. With `history`, the
   * message is kept and its id is assigned by the store (one atomic step); otherwise `id` is used.
   * `sender` travels with the message so the sending connection can be skipped. With `once`, a repeat of
   * its key on this channel publishes nothing and resolves to the first id, decided in the same step.
   */
  publish (channel: string, head: string, id: string, history: HistorySettings | undefined, sender: string | undefined, once?: Once): Promise<string>
  /** Kept messages after `since` (all without it), or recovered: false when `since` is no longer kept. */
  history (channel: string, since: string | null): Promise<HistoryRead>

  enter (set: PresenceSet, entry: PresenceEntry): Promise<void>
  /** Removes an entry; resolves to when the next grace period ends (ms epoch), or null. */
  exit (set: PresenceSet, entry: PresenceEntry): Promise<number | null>
  /** Heartbeat: refreshes (or re-adds) this instance's entries and sweeps lapsed ones and ended grace periods. */
  beat (set: PresenceSet, entries: PresenceEntry[]): Promise<number | null>
  /** Members (user ids) and counts, after a sweep. */
  read (set: PresenceSet): Promise<{ members: string[], subscribers: number }>

  /** Marks channels as having subscribers on this instance, for `ttl` ms. */
  markActive (channels: string[], ttl: number): Promise<void>
  /** Heartbeat: forgets channels whose mark lapsed, and keeps at most MAX_ACTIVE_CHANNELS (the freshest). */
  pruneActive (): Promise<void>
  active (): Promise<string[]>
}

/** Most channels the active registry keeps: a flood of names subscribed once cannot grow it further. */
export const MAX_ACTIVE_CHANNELS = 100_000

/** Ids of stored history: `<ms>-<seq>`, like Redis stream ids. */
export const HISTORY_ID = /^\d{1,20}-\d{1,20}$/

/**
 * Channel traffic as the bus carries it: a frame, or `~<sender>|<frame>` from a client (split without
 * parsing JSON).
 */
export function routeChannel (handlers: BusHandlers, channel: string, message: Buffer): void {
  if (message[0] !== 126 /* ~ */) return handlers.channel(channel, message)
  const bar = message.indexOf(124)
  handlers.channel(channel, message.subarray(bar + 1), message.toString('latin1', 1, bar))
}

export function withSender (frame: string, sender: string | undefined): string {
  return sender === undefined ? frame : `~${sender}|${frame}`
}
