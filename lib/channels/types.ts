import type { UserId } from '../validate.ts'

/** What a channel's name says about it; see docs/protocol.md "Channel kinds". */
export type ChannelKind = 'public' | 'web' | 'webauth' | 'track' | 'user_status' | 'private'

export interface HistoryOptions {
  /** Messages kept (approximately at least this many on Redis; exactly on the memory store). */
  size: number
  /** How long the history lives after its last message, in ms. @default 86400000 */
  ttl?: number
}

export interface SubscribeContext {
  channel: string
  kind: ChannelKind
  /** The connection's user; null for an anonymous connection. */
  userId: string | null
  /** The verified token's claims when the connection logged in with a token (the `jwt` option), else null. */
  claims: Record<string, unknown> | null
}

export interface ClientPublishContext {
  channel: string
  kind: ChannelKind
  event: string
  data: unknown
  /** The sender, stamped by the server; null for an anonymous connection. */
  userId: string | null
  /** The verified token's claims when the sender logged in with a token (the `jwt` option), else null. */
  claims: Record<string, unknown> | null
}

/**
 * What `onClientPublish` returns: `false` vetoes the message (the client gets `rejected`), an object
 * replaces its `event` and/or `data`, anything else lets it through unchanged.
 */
export type ClientPublishDecision = boolean | undefined | void | { event?: string, data?: unknown }

export interface ChannelOptions {
  /** Time a track_ member or a user_status_ user may be gone before `leave` / `offline` is sent, in ms. @default 2000 */
  presenceGrace?: number
  /** Client `publish` frames per second per connection (token bucket refill). @default 20 */
  publishRate?: number
  /** Client `publish` frames a connection may send at once before the rate applies. @default 10 */
  publishBurst?: number
  /**
   * History per channel name pattern (`*` matches any characters; the first matching pattern wins),
   * e.g. `{ news: { size: 100, ttl: 3600000 }, 'web_*': { size: 50 } }`. @default {}
   */
  history?: Record<string, HistoryOptions>
  /**
   * Decides who may subscribe (and read `members` / `history`). Called after the built-in rules
   * (`track_*` and `private_*` need an authorized user). Without it, `private_<id>` is open only to user `<id>`.
   */
  canSubscribe?: (ctx: SubscribeContext) => boolean | Promise<boolean>
  /** Vets or transforms each client `publish` before it is sent; see ClientPublishDecision. */
  onClientPublish?: (ctx: ClientPublishContext) => ClientPublishDecision | Promise<ClientPublishDecision>
}

export interface ChannelStats {
  /** Subscribed connections on all instances (anonymous ones too). */
  subscribers: number
  /** Distinct authorized users among them. */
  users: number
}

export interface ChannelInfo extends ChannelStats {
  channel: string
}

export interface HistoryResult {
  /** False when `since` is older than what is kept (or unknown): `messages` is then empty, never partial. */
  recovered: boolean
  /** Complete `message` frames, oldest first. */
  messages: Array<{ type: 'message', channel: string, event: string, data: unknown, id: string, userId?: string | null }>
}

export interface ChannelApi {
  /** Members of a `track_*` channel (user ids, across instances), or `[id]` / `[]` for `user_status_<id>`. */
  members (channel: string): Promise<string[]>
  /** `{ subscribers, users }` of a channel, summed across instances. */
  channelStats (channel: string): Promise<ChannelStats>
  /** Channels with at least one subscriber on any instance, with their counts. */
  channels (): Promise<ChannelInfo[]>
  /** The channel's kept messages after `since` (all kept messages without it). */
  history (channel: string, since?: string): Promise<HistoryResult>
}

export type { UserId }
