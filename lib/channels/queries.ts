import { HISTORY_ENVELOPE } from './frames.ts'
import type { Once, Store } from '../store/types.ts'
import type { ChannelSettings } from './options.ts'
import { historyOf, kindOf } from './policy.ts'
import { USER_STATUS } from '../protocol/names.ts'
import { subscriberSet } from './presence.ts'
import type { ChannelStats } from './types.ts'

/**
 * What reads and publishes on channels need: the store and the settings that shape its data. Plain
 * functions of it, so the plugin's connections, its API and the emitter share one implementation.
 */
export interface ChannelScope {
  store: Store
  settings: ChannelSettings
  heartbeatInterval: number
}

/** Members of a `track_*` channel (user ids, across instances), or `[id]` / `[]` for `user_status_<id>`. */
export async function members ({ store, settings, heartbeatInterval }: ChannelScope, channel: string): Promise<string[]> {
  if (kindOf(channel) !== 'user_status') return (await store.channels.read(subscriberSet(channel, heartbeatInterval, settings.presenceGrace))).members
  const userId = channel.slice(USER_STATUS.length)
  return (await store.status(userId)).online ? [userId] : []
}

export async function stats ({ store, settings, heartbeatInterval }: ChannelScope, channel: string): Promise<ChannelStats> {
  const { members, subscribers } = await store.channels.read(subscriberSet(channel, heartbeatInterval, settings.presenceGrace))
  return { subscribers, users: members.length }
}

/** Publishes a message head; on a channel with history the store assigns (and returns) the id. */
export async function publish ({ store, settings }: ChannelScope, channel: string, head: string, id: string, sender?: string, once?: Once): Promise<string> {
  return await store.channels.publish(channel, head, id, historyOf(settings, channel), sender, once)
}

/** Bytes a message on the channel leaves free in maxPayload: room for a history reply's fields. */
export function reserve (settings: ChannelSettings, channel: string): number {
  return historyOf(settings, channel) === undefined ? 0 : HISTORY_ENVELOPE
}
