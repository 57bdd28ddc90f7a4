// The bus: what travels between instances, and how the store hands it to this one.

/** A private message on its way to a user's sockets: its id and the complete `message` frame. */
export interface Routed {
  id: number
  frame: Buffer
}

/** An idempotent send: a repeat of `key` within `ttl` ms sends nothing and gets the first call's result. */
export interface Once {
  key: string
  ttl: number
}

/**
 * Commands that travel on a user's routing channel next to their messages. `synced`: the marker an attach
 * publishes; every message sent before the attach has been routed by the time it arrives.
 */
export type Control = { kind: 'revoke' } | { kind: 'evict', device: string } | { kind: 'synced', device: string }

/** What the store hands to this instance: only traffic for users and channels it listens to. */
export interface BusHandlers {
  user (userId: string, message: Routed): void
  control (userId: string, control: Control): void
  /** `sender`: the connection that published it (client publish), which must not get its own copy. */
  channel (channel: string, frame: Buffer, sender?: string): void
  /** The user went online or offline (for `user_status_<id>` watchers on this instance). */
  status (userId: string, online: boolean): void
  /**
   * Routing was interrupted (the subscriber reconnected, a slot moved, a shard failed over): local sockets
   * may have missed messages. Called as the subscriptions are made again; `ready` resolves once they are
   * in effect, when the catch-up can start. Live messages from now on are held and merged with it by id.
   */
  resync (ready: Promise<void>): void
}

/** The bus: routes a user's or a channel's traffic to the instances that listen for it. */
export interface Bus {
  start (handlers: BusHandlers): Promise<void>
  /** Starts routing the user's messages to this instance; resolves once messages can no longer miss it. */
  listenUser (userId: string): Promise<void>
  unlistenUser (userId: string): Promise<void>
  listenChannel (channel: string): Promise<void>
  unlistenChannel (channel: string): Promise<void>
  /** Once per heartbeat interval: checks that routing still works (Redis), forgets what expired (memory). */
  maintain (): Promise<void>
}
