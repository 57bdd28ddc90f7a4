import type { Client } from './client.ts'
import { defineScripts } from './client.ts'
import type { HistorySettings } from '../../channels/options.ts'
import { MESSAGE_TAIL } from '../../protocol/frames.ts'
import type { ChannelStats } from '../../channels/types.ts'
import { HISTORY_ID, MAX_ACTIVE_CHANNELS, withSender } from '../channels.ts'
import type { ChannelStore, HistoryRead, PresenceEntry, PresenceSet } from '../channels.ts'
import type { Once } from '../types.ts'
import type { Keys } from './keys.ts'
import * as scripts from './channel-scripts.ts'
import type { Script } from './batch.ts'

type Args = Array<string | number>

interface Commands {
  cometChannelPublish (...args: Args): Promise<string>
  cometChannelPublishOnce (...args: Args): Promise<string>
  cometChannelHistory (...args: Args): Promise<[number, Array<[string, string[]]>?]>
  cometPresenceEnter (...args: Args): Promise<null>
  cometPresenceExit (...args: Args): Promise<string | null>
  cometPresenceBeat (...args: Args): Promise<string | null>
  cometPresenceRead (...args: Args): Promise<[string[], number]>
}

const COMMANDS: Array<[keyof Commands, Script]> = [
  ['cometChannelPublish', scripts.publish],
  ['cometChannelPublishOnce', scripts.publishOnce],
  ['cometChannelHistory', scripts.history],
  ['cometPresenceEnter', scripts.enter],
  ['cometPresenceExit', scripts.exit],
  ['cometPresenceBeat', scripts.beat],
  ['cometPresenceRead', scripts.read]
]

/** The channel half of the Redis store; uses the store's command connection. */
export class RedisChannels implements ChannelStore {
  #cmd: Client
  #run: Commands
  #keys: Keys
  #sharded: boolean

  constructor (cmd: Client, keys: Keys, sharded: boolean) {
    this.#cmd = cmd
    this.#run = defineScripts<Commands>(cmd, COMMANDS, sharded)
    this.#keys = keys
    this.#sharded = sharded
  }

  async publish (channel: string, head: string, id: string, history: HistorySettings | undefined, sender: string | undefined, once?: Once): Promise<string> {
    const route = this.#keys.channelRoute(channel)
    if (once !== undefined) {
      return await this.#run.cometChannelPublishOnce(this.#keys.channel(channel, `once:${once.key}`), this.#keys.channel(channel, 'history'),
        route, head, MESSAGE_TAIL, history?.size ?? 0, history?.ttl ?? 0, withSender('', sender), id, once.ttl)
    }
    if (history === undefined) {
      const message = withSender(head + id + MESSAGE_TAIL, sender)
      if (this.#sharded) await this.#cmd.spublish(route, message)
      else await this.#cmd.publish(route, message)
      return id
    }
    return await this.#run.cometChannelPublish(this.#keys.channel(channel, 'history'), route, head, MESSAGE_TAIL, history.size, history.ttl, withSender('', sender))
  }

  async history (channel: string, since: string | null): Promise<HistoryRead> {
    if (since !== null && !HISTORY_ID.test(since)) return { recovered: false, frames: [] }
    const [recovered, entries = []] = await this.#run.cometChannelHistory(this.#keys.channel(channel, 'history'), since ?? '')
    return { recovered: recovered === 1, frames: entries.map(([id, fields]) => (fields[1] as string) + id + MESSAGE_TAIL) }
  }

  #args (set: PresenceSet): Args {
    const k = (what: string): string => this.#keys.channel(set.channel, what)
    const e = set.events
    return [k('entries'), k('members'), k('pending'), Date.now(), this.#keys.channelRoute(set.channel),
      e?.joinHead ?? '', e?.leaveHead ?? '', e?.tail ?? '', set.ttl, set.grace]
  }

  async enter (set: PresenceSet, [user, entry]: PresenceEntry): Promise<void> {
    await this.#run.cometPresenceEnter(...this.#args(set), user ?? '', entry)
  }

  async exit (set: PresenceSet, [user, entry]: PresenceEntry): Promise<number | null> {
    return due(await this.#run.cometPresenceExit(...this.#args(set), user ?? '', entry))
  }

  async beat (set: PresenceSet, entries: PresenceEntry[]): Promise<number | null> {
    const args = this.#args(set)
    for (const [user, entry] of entries) args.push(user ?? '', entry)
    return due(await this.#run.cometPresenceBeat(...args))
  }

  async read (set: PresenceSet): Promise<{ members: string[], stats: ChannelStats }> {
    const [members, subscribers] = await this.#run.cometPresenceRead(...this.#args(set))
    return { members, stats: { subscribers, users: members.length } }
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
