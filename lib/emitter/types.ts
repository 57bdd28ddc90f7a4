import type { CometOptions } from '../types.ts'
import type { RedisSetting } from '../store/redis/client.ts'

/**
 * A CometEmitter's options: the Redis of the app's instances, and the plugin options that shape what is
 * stored there. Give each the value the app's instances use (the same defaults apply).
 */
export interface EmitterOptions extends Pick<CometOptions, 'shardedPubSub' | 'offlineQueue' | 'resume' | 'history' | 'maxPayload' |
'minHashLength' | 'idempotencyTtl' | 'lastSeenTtl' | 'heartbeatInterval' | 'presenceGrace'> {
  /** The instances' Redis (a URL, ioredis options, an ioredis Redis or Cluster, or `{ cluster: [nodes] }`). */
  redis: RedisSetting
  /** Prefix of every Redis key and channel: the app's key prefix. @default 'comet:' */
  keyPrefix?: string
  /** Where Redis connection errors are reported (pino, or anything with `warn(obj, msg)`). @default none */
  logger?: EmitterLogger
}

export interface EmitterLogger {
  warn (obj: object, msg: string): void
}
