import type { Client } from './client.ts'
import { HISTORY_ID, MAX_ACTIVE_CHANNELS, withSender } from '../channels.ts'
import type { ChannelStore, HistoryRead, HistorySettings, PresenceEntry, PresenceSet } from '../channels.ts'
import type { Once } from '../types.ts'
import type { Keys } from './keys.ts'
import { channelScripts } from './channel-scripts.ts'
import { loadScripts } from './script.ts'
import type { Scripts } from './script.ts'

/** The channel half of the Redis store; uses the store's command connection. */
export class RedisChannels implements ChannelStore {
  #cmd: Client
  #run: Scripts<typeof channelScripts>
  #keys: Keys
  #tail: string
  /** PUBLISH or SPUBLISH, as the store routes. */
  #publish: (route: string, message: string) => Promise<unknown>

  constructor (cmd: Client, keys: Keys, sharded: boolean, tail: string, publish: (route: string, message: string) => Promise<unknown>) {
    this.#tail = tail
    this.#publish = publish
    this.#cmd = cmd
    this.#run = loadScripts(cmd, channelScripts, sharded)
    this.#keys = keys
  }

  async publish (channel: string, head: string, id: string, history: HistorySettings | undefined, sender: string | undefined, once?: Once): Promise<string> {
    const route = this.#keys.channelRoute(channel)
    const publish = { route, head, tail: this.#tail, sender: withSender('', sender) }
    if (once !== undefined) {
      return await this.#run.publishOnce({
        once: this.#keys.channel(channel, `once:${once.key}`),
        stream: this.#keys.channel(channel, 'history'),
        ...publish,
        size: history?.size ?? 0,
        ttl: history?.ttl ?? 0,
        id,
        once_ttl: once.ttl
      })
    }
    if (history === undefined) {
      await this.#publish(route, withSender(head + id + this.#tail, sender))
      return id
    }
    return await this.#run.publish({ stream: this.#keys.channel(channel, 'history'), ...publish, size: history.size, ttl: history.ttl })
  }

  async history (channel: string, since: string | null): Promise<HistoryRead> {
    if (since !== null && !HISTORY_ID.test(since)) return { recovered: false, frames: [] }
    const [recovered, entries = []] = await this.#run.history({ stream: this.#keys.channel(channel, 'history'), since: since ?? '' })
    return { recovered: recovered === 1, frames: entries.map(([id, fields]) => (fields[1] as string) + id + this.#tail) }
  }

  #set (set: PresenceSet) {
    const k = (what: string): string => this.#keys.channel(set.channel, what)
    const e = set.events
    return {
      entries: k('entries'),
      members: k('members'),
      pending: k('pending'),
      now: Date.now(),
      route: this.#keys.channelRoute(set.channel),
      join_head: e?.joinHead ?? '',
      leave_head: e?.leaveHead ?? '',
      tail: e?.tail ?? '',
      ttl: set.ttl,
      grace: set.grace
    }
  }

  async enter (set: PresenceSet, [user, entry]: PresenceEntry): Promise<void> {
    await this.#run.enter({ ...this.#set(set), user: user ?? '', entry })
  }

  async exit (set: PresenceSet, [user, entry]: PresenceEntry): Promise<number | null> {
    return due(await this.#run.exit({ ...this.#set(set), user: user ?? '', entry }))
  }

  async beat (set: PresenceSet, entries: PresenceEntry[]): Promise<number | null> {
    const present: string[] = []
    for (const [user, entry] of entries) present.push(user ?? '', entry)
    return due(await this.#run.beat({ ...this.#set(set), present }))
  }

  async read (set: PresenceSet): Promise<{ members: string[], subscribers: number }> {
    const [members, subscribers] = await this.#run.read(this.#set(set))
    return { members, subscribers }
  }

  async markActive (channels: string[], ttl: number): Promise<void> {
    if (channels.length === 0) return
    const lapse = String(Date.now() + ttl)
    const args: string[] = []
    for (const channel of channels) args.push(lapse, channel)
    await this.#cmd.zadd(this.#activeKey(), ...args)
    await this.#cmd.pexpire(this.#activeKey(), ttl)
  }

  async pruneActive (): Promise<void> {
    const key = this.#activeKey()
    await Promise.all([
      this.#cmd.zremrangebyscore(key, '-inf', String(Date.now())),
      this.#cmd.zremrangebyrank(key, 0, -MAX_ACTIVE_CHANNELS - 1)
    ])
  }

  async active (): Promise<string[]> {
    await this.#cmd.zremrangebyscore(this.#activeKey(), '-inf', String(Date.now()))
    return await this.#cmd.zrange(this.#activeKey(), '0', '-1')
  }

  /**
   * One key for all channels: which channels have subscribers on some live instance. Only single-key
   * commands touch it, so on a Cluster it simply lives on the shard that owns its slot.
   */
  #activeKey (): string { return `${this.#keys.prefix}channels` }
}

function due (reply: string | null): number | null {
  return reply === null ? null : Number(reply)
}
