import type { FastifyBaseLogger } from 'fastify'
import type { Subscriber } from './subscriber.ts'
import type { Hub } from '../routing/hub.ts'
import type { PresenceEntry, PresenceSet } from '../store/channels.ts'
import type { Store } from '../store/types.ts'
import { paced } from '../paced.ts'
import { presenceFrames } from './frames.ts'
import { kindOf } from './policy.ts'
import { USER_STATUS } from '../protocol/names.ts'

/** The set of a channel's subscribers: entries lapse after two heartbeats; `track_*` ones emit join / leave. */
export function subscriberSet (channel: string, heartbeatInterval: number, grace: number): PresenceSet {
  const track = kindOf(channel) === 'track'
  return {
    channel,
    ttl: 2 * heartbeatInterval,
    grace: track ? grace : 0,
    events: track ? presenceFrames(channel, 'join', 'leave') : null
  }
}

/**
 * Cluster-wide presence:
 * - every channel has a set of its subscribed connections (for counts); on `track_*` channels it emits
 *   `join` / `leave` with a grace period. This instance refreshes its own entries every heartbeat; entries
 *   of a crashed instance lapse after two, and the next beat or read of the set by any instance sweeps
 *   them and emits the leave, once.
 * - `user_status_<id>` reports the store's own record of the user's devices (lib/store/users.ts,
 *   UserStatus): the store sends `online` as a device arrives; `offline` comes from a sweep once the grace
 *   period is over, run by the instance that started it and, every heartbeat, by the instances with watchers.
 */
export class ChannelPresence {
  #store: Store
  #hub: Hub<Subscriber>
  #log: FastifyBaseLogger
  #grace: number
  #interval: number
  #entryOf: (conn: Subscriber) => string
  /** Grace-period timers, one per set or user: when it fires, the set or the user's status is swept. */
  #timers = new Map<string, { at: number, timer: NodeJS.Timeout }>()
  #stopped = false

  constructor (store: Store, hub: Hub<Subscriber>, log: FastifyBaseLogger, grace: number, interval: number, entryOf: (conn: Subscriber) => string) {
    this.#store = store
    this.#hub = hub
    this.#log = log
    this.#grace = grace
    this.#interval = interval
    this.#entryOf = entryOf
  }

  /** The set of a channel's subscribers. */
  subs (channel: string): PresenceSet {
    return subscriberSet(channel, this.#interval, this.#grace)
  }

  async enter (set: PresenceSet, entry: PresenceEntry): Promise<void> {
    await this.#store.channels.enter(set, entry)
  }

  /** Removes an entry in the background; the grace period that starts is ended by a timer here. */
  exit (set: PresenceSet, entry: PresenceEntry): void {
    this.#hub.track(this.#store.channels.exit(set, entry).then((due) => this.#schedule(set.channel, due, () => this.#sweep(set))), 'presence exit', { channel: set.channel })
  }

  /** A device left the store: if it was the user's last, offline follows the grace period. */
  deviceLeft (userId: string, device: string): void {
    this.#hub.track(this.#store.detach(userId, device).then((due) => this.#scheduleStatus(userId, due)), 'detach', { userId })
  }

  async #sweepStatus (userId: string): Promise<void> {
    this.#scheduleStatus(userId, (await this.#store.status(userId)).due)
  }

  #scheduleStatus (userId: string, due: number | null): void {
    // Channel names have no ':', so these keys never meet a channel's.
    this.#schedule(`status:${userId}`, due, () => this.#sweepStatus(userId))
  }

  /** This instance's entries in a channel's set, as the hub knows them. */
  #local (set: PresenceSet): PresenceEntry[] {
    const entries: PresenceEntry[] = []
    for (const conn of this.#hub.channels.get(set.channel)?.conns ?? []) entries.push([conn.userId, this.#entryOf(conn)])
    return entries
  }

  async #sweep (set: PresenceSet): Promise<void> {
    this.#schedule(set.channel, await this.#store.channels.beat(set, this.#local(set)), () => this.#sweep(set))
  }

  /** Runs `sweep` when the next grace period of a set (or of a user's status) ends. */
  #schedule (key: string, due: number | null, sweep: () => Promise<void>): void {
    if (due === null || this.#stopped) return
    const current = this.#timers.get(key)
    if (current !== undefined && current.at <= due) return
    if (current !== undefined) clearTimeout(current.timer)
    const timer = setTimeout(() => {
      this.#timers.delete(key)
      this.#hub.track(sweep(), 'presence sweep', { channel: key })
    }, Math.max(due - Date.now(), 0) + 5)
    timer.unref()
    this.#timers.set(key, { at: due, timer })
  }

  /**
   * One heartbeat slice: refresh this instance's entries and sweep the sets it listens to, for the channels
   * of the slice, and the status of the users watched here; once per interval (slice 0), mark its channels
   * active. (The devices themselves are the store's heartbeat: Store.refresh.)
   */
  async beat (slice: number): Promise<void> {
    const work = [paced([...this.#hub.channelsIn(slice)], async (channel) => await Promise.all([
      this.#sweep(this.subs(channel)),
      kindOf(channel) === 'user_status' ? this.#sweepStatus(channel.slice(USER_STATUS.length)) : undefined
    ]))]
    if (slice === 0) {
      work.push(this.#store.channels.markActive([...this.#hub.channels.keys()], 2 * this.#interval)
        .then(async () => await this.#store.channels.pruneActive()))
    }
    const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected')
    if (failed !== undefined) this.#log.warn({ err: failed.reason }, 'comet: presence heartbeat failed')
  }

  stop (): void {
    this.#stopped = true
    for (const { timer } of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
  }
}
