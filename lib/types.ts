import type { RegisterOptions } from 'fastify'
import type { RedisSetting } from './store/redis/client.ts'
import type { ChannelApi, ChannelOptions } from './channels/types.ts'
import type { Authenticate } from './auth/hook.ts'
import type { JwtOptions } from './auth/jwt.ts'
import type { OperationOptions } from './operations/options.ts'
import type { Health } from './operations/health.ts'
import type { ServerEventListener, ServerEventType, WebhookOptions } from './events/types.ts'
import type { EventData } from './client/events.ts'
import type { SendResult } from './store/types.ts'
import type { UserId } from './validate.ts'

export type * from './channels/types.ts'
export type * from './events/types.ts'
export type { AdminOptions, MetricsOptions, MetricsRegistry, OperationOptions } from './operations/options.ts'
export type { Health } from './operations/health.ts'
export type { SendResult } from './store/types.ts'
export type { UserId } from './validate.ts'
export type { RedisSetting } from './store/redis/client.ts'
export type { CometEvents, EventData } from './client/events.ts'
export type { Authenticate } from './auth/hook.ts'
export type { Claims, JwtKey, JwtOptions } from './auth/jwt.ts'

export interface OfflineQueueOptions {
  /** Messages kept per offline user; past it the oldest are dropped and the drop is reported. @default 100 */
  maxMessages?: number
  /** How long a queued message is kept, in ms (refreshed by every new queued message). @default 86400000 */
  ttl?: number
}

export interface ResumeOptions {
  /** Messages kept per user. @default 100 */
  size?: number
  /** How long each message is kept, in ms. @default 300000 */
  ttl?: number
}

export interface AuthRateLimitOptions {
  /** Failed authentications one address may make per window before its upgrades are refused (429). @default 10 */
  max?: number
  /** The window, in ms. @default 60000 */
  window?: number
}

export interface FrameRateOptions {
  /** Frames per second one connection may keep sending, every kind counted. @default 50 */
  rate?: number
  /** Frames it may send at once before the rate applies. @default 100 */
  burst?: number
}

/**
 * Fastify's own register options. Fastify hands them to the plugin, which applies them to its routes:
 * `register(comet, { prefix: '/rt' })` serves the socket at `/rt/comet`; `logLevel` also sets the level of
 * the plugin's own log lines.
 */
export interface CometRegisterOptions {
  /** Route prefix of every route of the plugin (the WebSocket, `client.js`, …). Must start with `/`. */
  prefix?: string
  /** Log level of the plugin's routes and of its own log lines. @default the app's */
  logLevel?: RegisterOptions['logLevel']
  /** Log serializers of the plugin's routes. */
  logSerializers?: RegisterOptions['logSerializers']
}

export interface CometOptions extends ChannelOptions, CometRegisterOptions, OperationOptions {
  /**
   * Where instances share state: a redis:// URL, ioredis options (Sentinel too: `{ sentinels, name }`),
   * an ioredis `Redis` or `Cluster` instance (which we then do not close), or `{ cluster: [nodes], options }`
   * for a Redis Cluster we connect to. Omit it to run one instance with everything in memory.
   */
  redis?: RedisSetting
  /**
   * Route messages with sharded pub/sub (SPUBLISH/SSUBSCRIBE, Redis ≥ 7): each message goes only to the
   * shard that owns the user's or channel's slot. Always on for a Redis Cluster (`false` is refused
   * there: classic PUBLISH would reach every node); off by default on one Redis, where it changes nothing
   * but needs Redis 7. @default true on a Cluster, false otherwise
   */
  shardedPubSub?: boolean
  /** Route of the WebSocket endpoint. @default '/comet' */
  path?: string
  /** Prefix of every Redis key and channel. @default 'comet:' */
  keyPrefix?: string
  /** Devices one user may have connected at once, across all instances. @default 16 */
  maxDevices?: number
  /** What happens to a device over `maxDevices`: refuse it (4429) or close the oldest (4409). @default 'reject' */
  onDeviceLimit?: 'reject' | 'evict-oldest'
  /** Queue for users with no device online, or `false` to drop such messages. @default { maxMessages: 100, ttl: 86400000 } */
  offlineQueue?: OfflineQueueOptions | false
  /**
   * Every private message is kept this long and this many per user, so a device that reconnects with the
   * last id it saw (`since` in its auth frame) gets exactly what it missed; `false` turns it off.
   * @default { size: 100, ttl: 300000 }
   */
  resume?: ResumeOptions | false
  /** Largest frame in bytes, both from clients (close 1009) and to clients (rejected at send). @default 65536 */
  maxPayload?: number
  /**
   * Outbound bytes one connection may have waiting; a client that reads slower than it is sent to is
   * closed with 4413 (it resumes from its last id when it reconnects), so memory stays bounded.
   * @default 1048576
   */
  maxBufferedBytes?: number
  /** Interval of WebSocket pings and of presence refresh, in ms; presence of a dead instance lapses after 3×. @default 25000 */
  heartbeatInterval?: number
  /** Time a new socket has to send its `auth` frame, in ms (close 4408). @default 10000 */
  authTimeout?: number
  /** Channel subscriptions per connection. @default 64 */
  maxSubscriptions?: number
  /** How long `lastSeen` is remembered after a user's last device leaves, in ms. @default 2592000000 (30 days) */
  lastSeenTtl?: number
  /** Serve the browser client at `${path}/client.js`. @default true */
  serveClient?: boolean
  /**
   * Origins allowed to open the socket from a browser: a list of origins (`'https://app.example.com'`),
   * or `'*'` for any. By default only the page's own host (Origin host = Host header). Clients that send
   * no Origin (servers, native apps) are always allowed: the check stops cross-site WebSocket hijacking.
   */
  allowedOrigins?: string[] | '*'
  /** Limits on failed authentications per client address, or `false`. @default { max: 10, window: 60000 } */
  authRateLimit?: AuthRateLimitOptions | false
  /** Shortest hash `registerAuth` accepts; short secrets can be guessed. @default 16 */
  minHashLength?: number
  /**
   * Frames per connection, every kind: past the rate (after the burst) a frame gets an `error` frame
   * `rate_limited` once and is dropped, and a connection that keeps on is closed with 1008; or `false`.
   * @default { rate: 50, burst: 100 }
   */
  frameRate?: FrameRateOptions | false
  /**
   * Sockets one address may hold that are not authenticated as a user (waiting for their auth frame, or
   * anonymous), per instance; past it the upgrade gets 429. `false`: no limit. @default 100
   */
  maxAnonymousPerAddress?: number | false
  /** Whether an auth frame without credentials makes an anonymous connection; `false` closes it with 4401. @default true */
  allowAnonymous?: boolean
  /**
   * The app's own authentication, run on the upgrade request after the origin check: return the user id
   * (the socket is that user's; its `auth` frame carries no credentials), or null to let the auth frame
   * decide. Throw an error with `statusCode` 401 or 403 to refuse the upgrade with it; anything else is a 500.
   */
  authenticate?: Authenticate
  /** Accept signed tokens (JWT) in the auth frame: `sub` is the user id. See docs/security.md "Tokens". */
  jwt?: JwtOptions
  /**
   * Server events POSTed as signed JSON batches (docs/events.md); each batch is sent by one instance and
   * retried until answered 2xx. Not on a Redis Cluster. @default []
   */
  webhooks?: WebhookOptions[]
  /** How long an `idempotencyKey` of `sendToUser` / `publish` is remembered, in ms. @default 300000 */
  idempotencyTtl?: number
  /** The HTTP API for other languages (`POST ${prefix}${path}/api/:method`), off without it: docs/server-api.md. */
  api?: ApiOptions
}

export interface ApiOptions {
  /** Bearer keys the API accepts, each at least 32 characters; several let you rotate them. */
  keys: string[]
  /** Largest request body in bytes (413 past it). @default 1048576 */
  bodyLimit?: number
}

export interface SendOptions {
  /**
   * A repeat with the same key (per user, or per channel) within `idempotencyTtl` delivers nothing and
   * resolves to the first call's result: retry a send safely. `[A-Za-z0-9_.:-]{1,128}`.
   */
  idempotencyKey?: string
}

export interface CreateAuthOptions {
  /** Lifetime of the secret in ms: at expiry the user's open sockets close with 4401. */
  ttl?: number
}

export interface RegisterAuthOptions {
  /**
   * Lifetime of the hash in ms; without it the hash lives until `revokeAuth`. At expiry the sockets it
   * opened close with 4401 (reason `expired`) on every instance, unless a new hash was registered meanwhile.
   */
  ttl?: number
}

/** One user's part of a `sendToUsers` call. */
export interface UserSendResult extends SendResult {
  /** The user id, normalized to a string. */
  userId: string
}

export interface PublishResult {
  id: string
}

export interface Presence {
  online: boolean
  /** Connected devices across all instances. */
  devices: number
  /** When the user's last device left; null when never seen (or forgotten after `lastSeenTtl`). */
  lastSeen: Date | null
}

export interface CometApi extends ChannelApi {
  /**
   * Creates a fresh secret for the user (256 random bits, base64url), registers it as `registerAuth` does and
   * returns it: hand it to the user's browser, which authenticates with (userId, secret).
   */
  createAuth (userId: UserId, options?: CreateAuthOptions): Promise<string>
  /** Stores the user's secret (as a SHA-256 digest). A browser authenticates with (userId, hash). */
  registerAuth (userId: UserId, hash: string, options?: RegisterAuthOptions): Promise<void>
  /**
   * Deletes the user's hash and closes their sockets on every instance with 4401; with `jwt`, tokens
   * issued at or before now are refused for `jwt.revocationTtl`.
   */
  revokeAuth (userId: UserId): Promise<void>
  /**
   * Delivers to every connected device of the user on every instance, or queues it when none is online.
   * `data` is checked against the event's type when the app declared it in `CometEvents`.
   */
  sendToUser<E extends string> (userId: UserId, event: E, data: EventData<E>, options?: SendOptions): Promise<SendResult>
  /**
   * `sendToUser` for up to 10,000 users at once, with the message serialized once: each user gets it as from
   * `sendToUser` (delivered or queued, decided atomically per user). One result per distinct user id, in
   * the order of the list; an id listed twice is sent once.
   */
  sendToUsers<E extends string> (userIds: readonly UserId[], event: E, data: EventData<E>): Promise<UserSendResult[]>
  /** Delivers to every subscriber of the channel on every instance; kept when the channel has history. */
  publish<E extends string> (channel: string, event: E, data: EventData<E>, options?: SendOptions): Promise<PublishResult>
  isOnline (userId: UserId): Promise<boolean>
  presence (userId: UserId): Promise<Presence>
  /** Whether the store answers a ping within 1 s: what `GET ${path}/health` answers (health option). */
  health (): Promise<Health>
  /**
   * Server events (docs/events.md): each reaches one instance that listens for its type, once (again only
   * if that instance dies first, or the listener throws: up to 5 attempts). In order per user or channel.
   */
  on<T extends ServerEventType> (type: T, listener: ServerEventListener<T>): void
  off<T extends ServerEventType> (type: T, listener: ServerEventListener<T>): void
}
