/**
 * Key and channel names. Every key of one user carries the hash tag `{u:<id>}`, so they share a Redis
 * Cluster slot and one script can touch them all; the user's routing channel carries the same tag.
 */
export class Keys {
  readonly prefix: string
  constructor (prefix: string) {
    this.prefix = prefix
  }

  auth (userId: string): string { return `${this.prefix}{u:${userId}}:auth` }
  /** Sorted set: device → the time it lapses unless its instance refreshes it. */
  devices (userId: string): string { return `${this.prefix}{u:${userId}}:devices` }
  /** Sorted set: `<id>|<frame>` scored by id. */
  queue (userId: string): string { return `${this.prefix}{u:${userId}}:queue` }
  /** Stream: every recent message, for devices that resume (scripts.ts, resumeFrom). */
  log (userId: string): string { return `${this.prefix}{u:${userId}}:rlog` }
  /** Hash: last id (seq), first id of its life (born), last seen, dropped count. */
  meta (userId: string): string { return `${this.prefix}{u:${userId}}:meta` }
  /** Pub/sub channel only the instances holding a device of the user listen to. */
  userRoute (userId: string): string { return `${this.prefix}{u:${userId}}` }
  channelRoute (channel: string): string { return `${this.prefix}{c:${channel}}` }
  /** Where an instance pings itself to prove its subscriber connection still receives. */
  probeRoute (instance: string): string { return `${this.prefix}{i:${instance}}` }

  /** Reads a routing channel name back: ['u' | 'c', name]. */
  parseRoute (route: string): [string, string] {
    return [route.charAt(this.prefix.length + 1), route.slice(this.prefix.length + 3, -1)]
  }
}
