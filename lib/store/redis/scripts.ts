// The user scripts, run atomically inside Redis: each decision that must not race (deliver or queue,
// device limit and queue take) is one script, one round trip. Their Lua is in lua/; each touches only
// keys of one user (one cluster slot), except the server events it records beside a transition
// (lib/events/lua.ts).
import { script } from './script.ts'

type Reply = Array<Buffer | number | null | Reply>

/**
 * The message for the user's route and log: `head .. id .. tail`, queued as `<id>|<frame>`. log_ttl: the
 * log key's lifetime; log_span: how long the log keeps a message (resume.ttl; lua/lib/log.lua).
 */
const send = {
  keys: ['meta', 'queue', 'devices', 'log'],
  shared: ['now', 'queue_max', 'queue_ttl', 'meta_ttl', 'log_size', 'log_ttl', 'log_span', 'tail'],
  libs: ['events', 'trim', 'log', 'deliver']
} as const

export const userScripts = {
  /** Returns [id, queued (1|0)]. */
  send: script<[string, number]>()({ ...send, argv: ['route', 'head'], body: 'send' }),
  /** send to many users (sendToUsers): the frame's head is shared, so it travels once per batch. */
  sendMany: script<[string, number]>()({ ...send, shared: [...send.shared, 'head'], argv: ['route'], body: 'send' }),
  /** send, once per idempotency key: `once` is the key's record, kept `once_ttl` ms. */
  sendOnce: script<[string, number]>()({ ...send, keys: [...send.keys, 'once'], argv: ['route', 'head', 'once_ttl'], body: 'send-once' }),
  /** entries: id, `<id>|<frame>` pairs. */
  requeue: script<null>()({
    keys: ['meta', 'queue'],
    argv: ['queue_max', 'queue_ttl'],
    list: 'entries',
    libs: ['events', 'trim'],
    body: 'requeue'
  }),
  /**
   * since: '' when the device has seen nothing; log_cutoff: ids at or below it are older than the log
   * keeps. Returns ['ok', dropped, queue entries, recovered ('1' | '0' | ''), missed entries, last id],
   * ['revoked'] or ['limit']; on 'ok' publishes `!synced|<device>` on the route.
   */
  attach: script<Reply>()({
    keys: ['auth', 'devices', 'queue', 'meta', 'log', 'revoked'],
    argv: ['proof', 'device', 'now', 'presence_ttl', 'max_devices', 'evict_oldest', 'route', 'meta_ttl', 'since', 'log_cutoff', 'log_size', 'log_ttl', 'log_span', 'tail', 'status_route'],
    libs: ['events', 'status', 'log', 'resume'],
    body: 'attach',
    buffers: true
  }),
  /**
   * After this instance's subscriber was cut off, its sockets take what was queued meanwhile and what they
   * missed. Returns [queue entries, recovered, missed entries].
   */
  catchUp: script<Reply>()({
    keys: ['queue', 'meta', 'log'],
    argv: ['since', 'log_cutoff', 'log_size', 'log_span', 'tail'],
    libs: ['log', 'resume'],
    body: 'catch-up',
    buffers: true
  }),
  /**
   * fresh: see lib/status.lua. Returns when the grace period that starts ends (a status sweep then, on any
   * instance, sends offline), or null.
   */
  detach: script<string | null>()({
    keys: ['devices', 'meta'],
    argv: ['device', 'now', 'meta_ttl', 'status_route', 'grace', 'fresh'],
    libs: ['events', 'status'],
    body: 'detach'
  }),
  /**
   * The heartbeat of one user on one instance: keeps its devices present (and the user online) and records
   * that the user was seen now, so a crashed instance's users keep a last-seen time of at most one heartbeat
   * before the crash.
   */
  refresh: script<null>()({
    keys: ['devices', 'meta', 'log'],
    shared: ['lapse', 'presence_ttl', 'now', 'meta_ttl', 'log_ttl'],
    argv: ['status_route'],
    list: 'ids',
    libs: ['events', 'status'],
    body: 'refresh'
  }),
  /**
   * Devices whose instance stopped refreshing them (it crashed) are removed here, lazily, and a user whose
   * grace period is over goes offline: instances sweep the users they have watchers of every heartbeat, and
   * when a grace period they started ends. Returns [devices, last seen or null, online (1|0), end of the
   * grace period or null].
   */
  readStatus: script<[number, string | null, number, string | null]>()({
    keys: ['devices', 'meta'],
    argv: ['now', 'status_route', 'fresh'],
    libs: ['events', 'status'],
    body: 'read-status'
  }),
  /** revocation_ttl 0: the revocation time is not recorded. */
  revoke: script<null>()({
    keys: ['auth', 'devices', 'revoked'],
    argv: ['route', 'now', 'revocation_ttl'],
    body: 'revoke'
  }),
  /**
   * attempts: a client address's hash of failures (`f`) and attempts in flight (`i`). Returns [admitted
   * (1|0), failures, ms left in the window].
   */
  authAttempt: script<[number, number, number]>()({ keys: ['attempts'], argv: ['max', 'window'], body: 'auth-attempt' }),
  /** failed: 1|0. Returns [failures, ms left in the window]. */
  authSettle: script<[number, number]>()({ keys: ['attempts'], argv: ['failed'], body: 'auth-settle' })
}
