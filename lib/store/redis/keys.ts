/**
 * Key and channel names. Every key of one user carries the hash tag `{u:<id>}`, so they share a Redis
 * Cluster slot and one script can touch them all; the user's routing channel carries the same tag.
 */
export class Keys {
  readonly prefix: string
  /** Channels named `<statusChannel><user id>` are the user's status channel (StoreSettings). */
  readonly #statusChannel: string | undefined
  constructor (prefix: string, statusChannel?: string) {
    this.prefix = prefix
    this.#statusChannel = statusChannel
  }

  auth (userId: string): string { return `${this.prefix}{u:${userId}}:auth` }
  /** Hash: a client address's failed authentications (`f`) and attempts in flight (`i`) in its window. */
  authAttempts (address: string): string { return `${this.prefix}authattempts:${address}` }
  /** String: when the user was last revoked (ms), kept `revocationTtl` for tokens issued before it. */
  revoked (userId: string): string { return `${this.prefix}{u:${userId}}:revoked` }
  /** Sorted set: device → the time it lapses unless its instance refreshes it. */
  devices (userId: string): string { return `${this.prefix}{u:${userId}}:devices` }
  /** Sorted set: `<id>|<frame>` scored by id. */
  queue (userId: string): string { return `${this.prefix}{u:${userId}}:queue` }
  /** Stream: the last id and every recent message, for devices that resume (lua/lib/log.lua). */
  log (userId: string): string { return `${this.prefix}{u:${userId}}:log` }
  /** Hash: what the log holds (k), last seen, dropped count, status. */
  meta (userId: string): string { return `${this.prefix}{u:${userId}}:meta` }
  /** String: the result of the user's send with this idempotency key, while a repeat is refused. */
  once (userId: string, key: string): string { return `${this.prefix}{u:${userId}}:once:${key}` }
  /** Pub/sub channel only the instances holding a device of the user listen to. */
  userRoute (userId: string): string { return `${this.prefix}{u:${userId}}` }
  /** Where the user's scripts publish `user_status_<id>` events: the status channel's route. */
  statusRoute (userId: string): string { return `${this.prefix}{u:${userId}}s` }
  channelRoute (channel: string): string {
    const status = this.#statusChannel
    const isStatus = status !== undefined && channel.length > status.length && channel.startsWith(status)
    return isStatus ? this.statusRoute(channel.slice(status.length)) : `${this.prefix}{c:${channel}}`
  }

  /** A key of a channel's (history, presence); a `user_status_` channel's share its route's hash tag. */
  channel (channel: string, what: string): string { return `${this.channelRoute(channel)}:${what}` }
  /** Where an instance pings itself to prove its subscriber connection still receives. */
  probeRoute (instance: string): string { return `${this.prefix}{i:${instance}}` }

  /** Hash: instance id → its latest report, for the admin page. */
  instances (): string { return `${this.prefix}{admin}:instances` }

  /** Reads a routing channel name back: ['u', user], ['s', user] (status), ['c', channel] or ['i', instance]. */
  parseRoute (route: string): [string, string] {
    const name = route.slice(this.prefix.length + 3, route.indexOf('}', this.prefix.length))
    return route.endsWith('}s') ? ['s', name] : [route.charAt(this.prefix.length + 1), name]
  }

  /** The status channel of a user. */
  statusChannel (userId: string): string { return `${this.#statusChannel ?? ''}${userId}` }
}
