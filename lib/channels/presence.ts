import type { FastifyBaseLogger } from 'fastify'
import type { Connection } from '../connections/connection.ts'
import type { Hub } from '../routing/hub.ts'
import type { PresenceEntry, PresenceSet } from '../store/channels.ts'
import type { Store } from '../store/types.ts'
import { presenceFrames } from './frames.ts'
import type { PresenceFrames } from './frames.ts'
import { kindOf, USER_STATUS } from './policy.ts'

/**
 * Cluster-wide presence, built on the store's presence sets:
 * - every channel has a 'subs' set of its subscribed connections (for counts); on `track_*` channels it
 *   emits `join` / `leave` with a grace period;
 * - every user has a 'devs' set of their devices on `user_status_<id>`, which emits `online` / `offline`.
 * This instance refreshes its own entries every heartbeat; entries of a crashed instance lapse after two,
 * and the next beat or read of the set by any instance sweeps them and emits the leave, once.
 */
export class Presence {
  #store: Store
  #hub: Hub
  #log: FastifyBaseLogger
  #grace: number
  #interval: number
  #entryOf: (conn: Connection) => string
  /** Grace-period timers, one per set: when it fires, the set is swept (and `leave` sent). */
  #timers = new Map<string, { at: number, timer: NodeJS.Timeout }>()
  #stopped = false

  constructor (store: Store, hub: Hub, log: FastifyBaseLogger, grace: number, interval: number, entryOf: (conn: Connection) => string) {
    this.#store = store
    this.#hub = hub
    this.#log = log
    this.#grace = grace
    this.#interval = interval
    this.#entryOf = entryOf
  }

  /** The set of a channel's subscribers. */
  subs (channel: string): PresenceSet {
    const track = kindOf(channel) === 'track'
    return {
      channel,
      kind: 'subs',
      ttl: 2 * this.#interval,
      grace: track ? this.#grace : 0,
      events: track ? this.#eventFrames(channel, 'join', 'leave') : null
    }
  }

  /** The set of a user's devices, reported on `user_status_<id>`. */
  devices (userId: string): PresenceSet {
    const channel = USER_STATUS + userId
    return { channel, kind: 'devs', ttl: 2 * this.#interval, grace: this.#grace, events: this.#eventFrames(channel, 'online', 'offline') }
  }

  #eventFrames (channel: string, join: string, leave: string): PresenceFrames {
    return presenceFrames(channel, join, leave)
  }

  async enter (set: PresenceSet, entry: PresenceEntry): Promise<void> {
    await this.#store.channels.enter(set, entry)
  }

  /** Removes an entry in the background; the grace period that starts is ended by a timer here. */
  exit (set: PresenceSet, entry: PresenceEntry): void {
    this.#hub.track(this.#store.channels.exit(set, entry).then((due) => this.#schedule(set, due)), 'presence exit', { channel: set.channel })
  }

  /** This instance's entries in a set, as the hub knows them. */
  #local (set: PresenceSet): PresenceEntry[] {
    const entries: PresenceEntry[] = []
    if (set.kind === 'subs') {
      for (const conn of this.#hub.channels.get(set.channel)?.conns ?? []) entries.push([conn.userId, this.#entryOf(conn)])
    } else {
      const userId = set.channel.slice(USER_STATUS.length)
      for (const conn of this.#hub.users.get(userId)?.conns ?? []) if (conn.device !== null) entries.push([userId, conn.device])
    }
    return entries
  }

  async #sweep (set: PresenceSet): Promise<void> {
    this.#schedule(set, await this.#store.channels.beat(set, this.#local(set)))
  }

  #schedule (set: PresenceSet, due: number | null): void {
    if (due === null || this.#stopped) return
    const key = `${set.kind}:${set.channel}`
    const current = this.#timers.get(key)
    if (current !== undefined && current.at <= due) return
    if (current !== undefined) clearTimeout(current.timer)
    const timer = setTimeout(() => {
      this.#timers.delete(key)
      this.#hub.track(this.#sweep(set), 'presence sweep', { channel: set.channel })
    }, Math.max(due - Date.now(), 0) + 5)
    timer.unref()
    this.#timers.set(key, { at: due, timer })
  }

  /**
   * One heartbeat slice: refresh this instance's entries and sweep the sets it listens to, for the channels
   * and users of the slice; once per interval (slice 0), mark its channels active.
   */
  async beat (slice: number): Promise<void> {
    const sets: PresenceSet[] = []
    const users = new Set(this.#hub.devices(slice).keys())
    for (const channel of this.#hub.channelsIn(slice)) {
      sets.push(this.subs(channel))
      if (kindOf(channel) === 'user_status') users.add(channel.slice(USER_STATUS.length))
    }
    for (const userId of users) sets.push(this.devices(userId))
    const work: Array<Promise<unknown>> = sets.map((set) => this.#sweep(set))
    if (slice === 0) work.push(this.#store.channels.markActive([...this.#hub.channels.keys()], 2 * this.#interval))
    const failed = (await Promise.allSettled(work)).find((r) => r.status === 'rejected')
    if (failed !== undefined) this.#log.warn({ err: failed.reason }, 'comet: presence heartbeat failed')
  }

  stop (): void {
    this.#stopped = true
    for (const { timer } of this.#timers.values()) clearTimeout(timer)
    this.#timers.clear()
  }
}
