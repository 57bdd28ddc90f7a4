import type { RedisSetting } from './store/redis/client.ts'
import { isCluster } from './store/redis/client.ts'
import { errors } from './errors.ts'
import type { CometOptions, CometRegisterOptions } from './types.ts'
import { CHANNEL_OPTIONS, normalizeChannels } from './channels/options.ts'
import type { ChannelSettings } from './channels/options.ts'
import { normalizeApi } from './api/options.ts'
import type { ApiSettings } from './api/options.ts'
import type { StoreSettings } from './store/types.ts'
import { normalizeJwt, REVOCATION_TTL } from './auth/jwt.ts'
import type { JwtSettings } from './auth/jwt.ts'
import type { Authenticate } from './auth/hook.ts'
import { normalizeOperations, OPERATION_OPTIONS } from './operations/options.ts'
import type { OperationSettings } from './operations/options.ts'
import { normalizeWebhooks } from './events/options.ts'
import type { WebhookSettings } from './events/webhooks.ts'
import { MESSAGE_TAIL } from './protocol/frames.ts'
import { USER_STATUS } from './protocol/names.ts'
import { intOption } from './validate.ts'

export interface Settings {
  redis: RedisSetting | undefined
  /** SPUBLISH/SSUBSCRIBE instead of PUBLISH/SUBSCRIBE; always true on a Cluster. */
  shardedPubSub: boolean
  /** Channel kinds, presence, history, client publishing: lib/channels/options.ts. */
  channels: ChannelSettings
  path: string
  keyPrefix: string
  /** Fastify's register options, applied to the plugin's routes (and `logLevel` to its logger). */
  register: CometRegisterOptions
  maxDevices: number
  onDeviceLimit: 'reject' | 'evict-oldest'
  /** maxMessages 0 means no queue. */
  offlineQueue: { maxMessages: number, ttl: number }
  /** size 0 means no resume log. */
  resume: { size: number, ttl: number }
  maxPayload: number
  maxBufferedBytes: number
  heartbeatInterval: number
  authTimeout: number
  maxSubscriptions: number
  lastSeenTtl: number
  serveClient: boolean
  minHashLength: number
  allowedOrigins: Set<string> | '*' | null
  /** max 0 means no limit. */
  authRateLimit: { max: number, window: number }
  /** Frames per second per connection, after a burst; rate 0 means no limit. */
  frameRate: { rate: number, burst: number }
  /** 0 means no limit. */
  maxAnonymousPerAddress: number
  allowAnonymous: boolean
  authenticate: Authenticate | undefined
  jwt: JwtSettings | null
  /** Metrics, health check, admin page: lib/operations/options.ts. */
  operations: OperationSettings
  /** Server events POSTed to these (lib/events). */
  webhooks: WebhookSettings[]
  idempotencyTtl: number
  /** null: no HTTP API routes. */
  api: ApiSettings | null
}

const KNOWN = new Set(['redis', 'shardedPubSub', 'path', 'keyPrefix', 'maxDevices', 'onDeviceLimit', 'offlineQueue', 'maxPayload',
  'heartbeatInterval', 'authTimeout', 'maxSubscriptions', 'lastSeenTtl', 'serveClient', 'minHashLength', 'resume', 'maxBufferedBytes', 'allowedOrigins', 'authRateLimit', 'webhooks',
  'frameRate', 'maxAnonymousPerAddress', 'allowAnonymous',
  'authenticate', 'jwt', 'idempotencyTtl', 'api'])
for (const key of CHANNEL_OPTIONS) KNOWN.add(key)
for (const key of OPERATION_OPTIONS) KNOWN.add(key)
// Fastify's own register options: passed to every plugin, which an fp plugin must apply itself.
const REGISTER = ['prefix', 'logLevel', 'logSerializers'] as const
for (const key of REGISTER) KNOWN.add(key)

/** Validates every option once, up front, so a typo fails at register time and not at the first message. */
export function normalize (options: CometOptions = {}): Settings {
  if (typeof options !== 'object' || options === null) throw new errors.OPTIONS('options must be an object')
  for (const key of Object.keys(options)) {
    if (!KNOWN.has(key)) throw new errors.OPTIONS(`unknown option "${key}"`)
  }
  const queue = options.offlineQueue === false ? { maxMessages: 0, ttl: 1 } : options.offlineQueue ?? {}
  if (typeof queue !== 'object' || queue === null) throw new errors.OPTIONS('offlineQueue must be an object or false')
  const resume = options.resume === false ? { size: 0, ttl: 1 } : options.resume ?? {}
  if (typeof resume !== 'object' || resume === null) throw new errors.OPTIONS('resume must be an object or false')

  const path = options.path ?? '/comet'
  if (typeof path !== 'string' || !/^\/[^?#\s]*$/.test(path)) throw new errors.OPTIONS('path must start with "/" and contain no query')
  const keyPrefix = options.keyPrefix ?? 'comet:'
  if (typeof keyPrefix !== 'string' || /[{}\s]/.test(keyPrefix)) throw new errors.OPTIONS('keyPrefix must be a string without braces or spaces')
  const onDeviceLimit = options.onDeviceLimit ?? 'reject'
  if (onDeviceLimit !== 'reject' && onDeviceLimit !== 'evict-oldest') throw new errors.OPTIONS('onDeviceLimit must be "reject" or "evict-oldest"')
  const origins = options.allowedOrigins
  if (origins !== undefined && origins !== '*' && !(Array.isArray(origins) && origins.every((o) => typeof o === 'string'))) {
    throw new errors.OPTIONS('allowedOrigins must be a list of origins or "*"')
  }
  const rate = options.authRateLimit === false ? { max: 0, window: 1 } : options.authRateLimit ?? {}
  if (typeof rate !== 'object' || rate === null) throw new errors.OPTIONS('authRateLimit must be an object or false')
  const frameRate = options.frameRate === false ? { rate: 0, burst: 1 } : options.frameRate ?? {}
  if (typeof frameRate !== 'object' || frameRate === null) throw new errors.OPTIONS('frameRate must be an object or false')
  const redis = options.redis
  if (redis !== undefined && typeof redis !== 'string' && (typeof redis !== 'object' || redis === null)) {
    throw new errors.OPTIONS('redis must be a URL, ioredis options, an ioredis Redis or Cluster, or { cluster: [nodes] }')
  }
  const cluster = isCluster(redis)
  const nodes = cluster && typeof redis === 'object' && Object.hasOwn(redis, 'cluster') ? (redis as { cluster: unknown }).cluster : null
  if (nodes !== null && !(Array.isArray(nodes) && nodes.length > 0)) {
    throw new errors.OPTIONS('redis.cluster must be a non-empty list of nodes, e.g. [{ host: "10.0.0.1", port: 6379 }]')
  }
  if (options.authenticate !== undefined && typeof options.authenticate !== 'function') throw new errors.OPTIONS('authenticate must be a function (request) => userId | null')
  const sharded = bool('shardedPubSub', options.shardedPubSub, cluster)
  if (cluster && !sharded) throw new errors.OPTIONS('shardedPubSub cannot be false on a Redis Cluster: classic PUBLISH would reach every node')

  return {
    redis,
    shardedPubSub: sharded,
    channels: normalizeChannels(options),
    path: path.length > 1 ? path.replace(/\/$/, '') : path,
    keyPrefix,
    register: registerOptions(options),
    maxDevices: intOption('maxDevices', options.maxDevices, 16, 1),
    onDeviceLimit,
    offlineQueue: {
      maxMessages: options.offlineQueue === false ? 0 : intOption('offlineQueue.maxMessages', queue.maxMessages, 100, 1),
      ttl: intOption('offlineQueue.ttl', queue.ttl, 86_400_000, 1)
    },
    resume: {
      size: options.resume === false ? 0 : intOption('resume.size', resume.size, 100, 1),
      ttl: intOption('resume.ttl', resume.ttl, 300_000, 1)
    },
    maxPayload: intOption('maxPayload', options.maxPayload, 65_536, 256),
    maxBufferedBytes: intOption('maxBufferedBytes', options.maxBufferedBytes, 1_048_576, 1024),
    heartbeatInterval: intOption('heartbeatInterval', options.heartbeatInterval, 25_000, 50),
    authTimeout: intOption('authTimeout', options.authTimeout, 10_000, 1),
    maxSubscriptions: intOption('maxSubscriptions', options.maxSubscriptions, 64, 0),
    lastSeenTtl: intOption('lastSeenTtl', options.lastSeenTtl, 2_592_000_000, 1),
    serveClient: bool('serveClient', options.serveClient, true),
    minHashLength: intOption('minHashLength', options.minHashLength, 16, 1),
    allowedOrigins: origins === undefined ? null : origins === '*' ? '*' : new Set(origins.map((o) => o.replace(/\/$/, '').toLowerCase())),
    authRateLimit: {
      max: options.authRateLimit === false ? 0 : intOption('authRateLimit.max', rate.max, 10, 1),
      window: intOption('authRateLimit.window', rate.window, 60_000, 1)
    },
    frameRate: {
      rate: options.frameRate === false ? 0 : intOption('frameRate.rate', frameRate.rate, 50, 1),
      burst: intOption('frameRate.burst', frameRate.burst, 100, 1)
    },
    maxAnonymousPerAddress: options.maxAnonymousPerAddress === false ? 0 : intOption('maxAnonymousPerAddress', options.maxAnonymousPerAddress, 100, 1),
    allowAnonymous: bool('allowAnonymous', options.allowAnonymous, true),
    authenticate: options.authenticate,
    jwt: normalizeJwt(options.jwt),
    operations: normalizeOperations(options),
    webhooks: normalizeWebhooks(options.webhooks),
    idempotencyTtl: intOption('idempotencyTtl', options.idempotencyTtl, 300_000, 1),
    api: normalizeApi(options.api)
  }
}

/** What the store needs of the settings: the shape of stored data and presence timing. */
export function storeSettings (settings: Settings): StoreSettings {
  return {
    keyPrefix: settings.keyPrefix,
    messageTail: MESSAGE_TAIL,
    statusChannel: USER_STATUS,
    maxDevices: settings.maxDevices,
    evictOldest: settings.onDeviceLimit === 'evict-oldest',
    queue: settings.offlineQueue,
    resume: settings.resume,
    presenceTtl: 3 * settings.heartbeatInterval,
    presenceGrace: settings.channels.presenceGrace,
    lastSeenTtl: settings.lastSeenTtl,
    // Kept without `jwt` too: a worker's emitter, or an instance without it, revokes for the ones with it.
    revocationTtl: settings.jwt?.revocationTtl ?? REVOCATION_TTL
  }
}

function registerOptions (options: CometOptions): CometRegisterOptions {
  const { prefix, logLevel, logSerializers } = options
  // A prefix without its leading "/" is most likely a Redis key prefix from before keyPrefix existed.
  if (prefix !== undefined && (typeof prefix !== 'string' || (prefix !== '' && !prefix.startsWith('/')) || /[?#\s]/.test(prefix))) {
    throw new errors.OPTIONS(`prefix is Fastify's route prefix and must start with "/" (got ${JSON.stringify(prefix)}); the Redis key prefix is keyPrefix`)
  }
  if (logLevel !== undefined && (typeof logLevel !== 'string' || !LOG_LEVELS.has(logLevel))) {
    throw new errors.OPTIONS(`logLevel must be one of ${[...LOG_LEVELS].join(', ')}`)
  }
  if (logSerializers !== undefined && (typeof logSerializers !== 'object' || logSerializers === null)) {
    throw new errors.OPTIONS('logSerializers must be an object of functions')
  }
  const register: CometRegisterOptions = {}
  if (prefix !== undefined) register.prefix = prefix
  if (logLevel !== undefined) register.logLevel = logLevel
  if (logSerializers !== undefined) register.logSerializers = logSerializers
  return register
}

const LOG_LEVELS = new Set(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])

function bool (name: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new errors.OPTIONS(`${name} must be a boolean`)
  return value
}
