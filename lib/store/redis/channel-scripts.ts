// The channel scripts: publishing with history, and presence sets. Their Lua is in lua/; each touches only
// the keys of one channel (hash tag `{c:<channel>}`), so it runs on one Redis Cluster slot; PUBLISH takes
// no key. Server events beside a presence transition: lib/events/lua.ts.
import { script } from './script.ts'

/** sender: '' or `~<sender>|`, in front of the published frame. size '0': no history. */
const publish = {
  argv: ['route', 'head', 'tail', 'size', 'ttl', 'sender'],
  libs: ['publish']
} as const

/**
 * A channel's presence set (lua/presence-set.lua). join_head '' publishes no join/leave frames; ttl is an
 * entry's lifetime unless refreshed, grace how long a user who left stays a member.
 */
const presence = {
  keys: ['entries', 'members', 'pending'],
  argv: ['now', 'route', 'join_head', 'leave_head', 'tail', 'ttl', 'grace'],
  libs: ['events']
} as const

export const channelScripts = {
  /** Returns the id: the history stream's, or ''. */
  publish: script<string>()({ ...publish, keys: ['stream'], body: 'channel-publish' }),
  /** publish, once per idempotency key: `once` is the key's record, kept `once_ttl` ms; id is used without history. */
  publishOnce: script<string>()({ ...publish, keys: ['once', 'stream'], argv: [...publish.argv, 'id', 'once_ttl'], body: 'channel-publish-once' }),
  /** since: '' for everything kept. Returns [1, entries], or [0] when since is no longer in the stream. */
  history: script<[number, Array<[string, string[]]>?]>()({ keys: ['stream'], argv: ['since'], body: 'channel-history' }),
  /** user: '' for anonymous. */
  enter: script<null>()({ ...presence, argv: [...presence.argv, 'user', 'entry'], body: ['presence-set', 'presence-enter'] }),
  /** Returns the end of the next grace period, or null. */
  exit: script<string | null>()({ ...presence, argv: [...presence.argv, 'user', 'entry'], body: ['presence-set', 'presence-exit'] }),
  /** present: user, entry pairs. Returns the end of the next grace period, or null. */
  beat: script<string | null>()({ ...presence, list: 'present', body: ['presence-set', 'presence-beat'] }),
  /** Returns [members, entries] after a sweep. */
  read: script<[string[], number]>()({ ...presence, body: ['presence-set', 'presence-read'] })
}
