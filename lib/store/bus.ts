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
  /**
   * Routing was interrupted (the subscriber reconnected, a slot moved, a shard failed over): local sockets
   * may have missed messages. Called as the subscriptions are made again; `ready` resolves once they are
   * in effect, when the catch-up can start. Live messages from now on are held and merged with it by id.
   */
  resync (ready: Promise<void>): void
}
