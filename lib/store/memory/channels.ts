import { HISTORY_ID, MAX_ACTIVE_CHANNELS } from '../channels.ts'
import type { ChannelStore, HistorySettings, HistoryRead, PresenceEntry, PresenceSet } from '../channels.ts'
import { OnceRecord } from './once.ts'
import type { Once } from '../types.ts'
import type { EventSink, StoreEvent } from '../../events/types.ts'

interface SetState {
  /** `<user>|<entry>` → lapse time */
  entries: Map<string, number>
  /** user → live entries (0 while in grace) */
  members: Map<string, number>
  /** user → end of grace */
  pending: Map<string, number>
}

interface History {
  messages: Array<{ id: string, frame: string }>
  expires: number
}

/** Delivers a frame to this instance if it listens on the channel (the memory store's bus). */
export type Deliver = (channel: string, frame: string, sender: string | undefined) => void

/** The channel half of the memory store: the same state machine as the Redis scripts, in process. */
export class MemoryChannels implements ChannelStore {
  #deliver: Deliver
  #sets = new Map<string, SetState>()
  #history = new Map<string, History>()
  #active = new Map<string, number>()
  #lastMs = 0
  #seq = 0
  /** `<channel>|<idempotency key>` → the first publish's id. */
  #published = new OnceRecord<string>()
  /** Server events (lib/events), decided with the transitions as the Redis scripts do. */
  events: EventSink | null = null

  #tail: string

  constructor (tail: string, deliver: Deliver) {
    this.#tail = tail
    this.#deliver = deliver
  }

  async publish (channel: string, head: string, id: string, history: HistorySettings | undefined, sender: string | undefined, once?: Once): Promise<string> {
    if (once === undefined) return this.#publish(channel, head, id, history, sender)
    const key = `${channel}|${once.key}`
    const now = Date.now()
    const done = this.#published.get(key, now)
    if (done !== undefined) return done
    const published = this.#publish(channel, head, id, history, sender)
    this.#published.set(key, published, now + once.ttl)
    return published
  }

  #publish (channel: string, head: string, id: string, history: HistorySettings | undefined, sender: string | undefined): string {
    if (history !== undefined) {
      const now = Date.now()
      if (now > this.#lastMs) {
        this.#lastMs = now
        this.#seq = 0
      } else {
        this.#seq++
      }
      id = `${this.#lastMs}-${this.#seq}`
      let kept = this.#history.get(channel)
      if (kept === undefined || kept.expires <= now) {
        kept = { messages: [], expires: 0 }
        this.#history.set(channel, kept)
      }
      kept.messages.push({ id, frame: head + id + this.#tail })
      if (kept.messages.length > history.size) kept.messages.splice(0, kept.messages.length - history.size)
      kept.expires = now + history.ttl
    }
    this.#deliver(channel, head + id + this.#tail, sender)
    return id
  }

  async history (channel: string, since: string | null): Promise<HistoryRead> {
    const kept = this.#history.get(channel)
    const messages = kept === undefined || kept.expires <= Date.now() ? [] : kept.messages
    if (since === null) return { recovered: true, frames: messages.map((m) => m.frame) }
    const at = HISTORY_ID.test(since) ? messages.findIndex((m) => m.id === since) : -1
    if (at === -1) return { recovered: false, frames: [] }
    return { recovered: true, frames: messages.slice(at + 1).map((m) => m.frame) }
  }

  #state (set: PresenceSet): SetState {
    let state = this.#sets.get(set.channel)
    if (state === undefined) {
      state = { entries: new Map(), members: new Map(), pending: new Map() }
      this.#sets.set(set.channel, state)
    }
    return state
  }

  #add (set: PresenceSet, state: SetState, [user, entry]: PresenceEntry, lapse: number): void {
    const key = `${user ?? ''}|${entry}`
    const known = state.entries.has(key)
    state.entries.set(key, lapse)
    if (known) return
    if (state.entries.size === 1) this.#event(set, 'occupied')
    if (user === null) return
    const n = (state.members.get(user) ?? 0) + 1
    state.members.set(user, n)
    if (n === 1 && !state.pending.delete(user) && set.events !== null) {
      this.#deliver(set.channel, set.events.joinHead + user + set.events.tail, undefined)
      this.#event(set, 'join', user)
    }
  }

  #event (set: PresenceSet, type: StoreEvent['type'], userId?: string): void {
    this.events?.({ type, key: `c:${set.channel}`, at: Date.now(), channel: set.channel, userId })
  }

  #gone (state: SetState, user: string, due: number): void {
    const n = (state.members.get(user) ?? 0) - 1
    state.members.set(user, Math.max(n, 0))
    if (n <= 0) state.pending.set(user, due)
  }

  #sweep (set: PresenceSet, state: SetState, now: number): number | null {
    let lapsed = 0
    for (const [key, lapse] of state.entries) {
      if (lapse > now) continue
      lapsed++
      state.entries.delete(key)
      const user = key.slice(0, key.indexOf('|'))
      if (user !== '') this.#gone(state, user, now)
    }
    let next: number | null = null
    for (const [user, due] of state.pending) {
      if (due > now) {
        next = next === null ? due : Math.min(next, due)
        continue
      }
      state.pending.delete(user)
      if ((state.members.get(user) ?? 0) > 0) continue
      state.members.delete(user)
      if (set.events !== null) {
        this.#deliver(set.channel, set.events.leaveHead + user + set.events.tail, undefined)
        this.#event(set, 'leave', user)
      }
    }
    if (lapsed > 0 && state.entries.size === 0) this.#event(set, 'vacated')
    if (state.entries.size === 0 && state.members.size === 0) this.#sets.delete(set.channel)
    return next
  }

  async enter (set: PresenceSet, entry: PresenceEntry): Promise<void> {
    this.#add(set, this.#state(set), entry, Date.now() + set.ttl)
  }

  async exit (set: PresenceSet, [user, entry]: PresenceEntry): Promise<number | null> {
    const now = Date.now()
    const state = this.#state(set)
    if (state.entries.delete(`${user ?? ''}|${entry}`)) {
      if (state.entries.size === 0) this.#event(set, 'vacated')
      if (user !== null) this.#gone(state, user, now + set.grace)
    }
    return this.#sweep(set, state, now)
  }

  async beat (set: PresenceSet, entries: PresenceEntry[]): Promise<number | null> {
    const now = Date.now()
    const state = this.#state(set)
    for (const entry of entries) this.#add(set, state, entry, now + set.ttl)
    return this.#sweep(set, state, now)
  }

  async read (set: PresenceSet): Promise<{ members: string[], subscribers: number }> {
    const state = this.#state(set)
    this.#sweep(set, state, Date.now())
    return { members: [...state.members.keys()], subscribers: state.entries.size }
  }

  async markActive (channels: string[], ttl: number): Promise<void> {
    const now = Date.now()
    for (const channel of channels) {
      // Kept in order of marking: the least recently marked goes first when the registry is full.
      this.#active.delete(channel)
      if (this.#active.size >= MAX_ACTIVE_CHANNELS) this.#active.delete(this.#active.keys().next().value as string)
      this.#active.set(channel, now + ttl)
    }
    // The heartbeat doubles as the sweep that forgets expired histories and idempotency keys.
    for (const [channel, kept] of this.#history) if (kept.expires <= now) this.#history.delete(channel)
    this.#published.sweep(now)
  }

  async pruneActive (): Promise<void> {
    const now = Date.now()
    for (const [channel, lapse] of this.#active) if (lapse <= now) this.#active.delete(channel)
  }

  /** Channels with a live mark, for `channels()`; also what tests read to see the registry's size. */
  async active (): Promise<string[]> {
    await this.pruneActive()
    return [...this.#active.keys()]
  }
}
