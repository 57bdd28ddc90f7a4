import { Cluster, Redis } from 'ioredis'
import { stopSlotRefresh } from '../../internals.ts'
import type { ClusterNode, ClusterOptions, RedisOptions } from 'ioredis'

/** One Redis (possibly found through Sentinel) or a Redis Cluster: the same commands, routed by slot. */
export type Client = Redis | Cluster

/** What the `redis` option accepts. */
export type RedisSetting = string | RedisOptions | Redis | Cluster | { cluster: ClusterNode[], options?: ClusterOptions }

/**
 * Defaults for clients we create: never hang a caller while Redis is away. Commands fail at once while
 * disconnected (no offline queue) and after 5 s on a connection that hangs. No auto-pipelining: the
 * scripts batch their calls per event-loop turn already (script.ts), and ioredis' auto-pipeline
 * builds a Pipeline per turn that copies every defined script onto itself (garbage on every send). On a
 * Cluster it would also not follow ASK/TRYAGAIN for a batch whose other commands succeeded, which a
 * resharding makes common.
 */
const CLIENT_DEFAULTS: RedisOptions = { enableAutoPipelining: false, enableOfflineQueue: false, maxRetriesPerRequest: 2, connectTimeout: 2000, commandTimeout: 5000 }

/** Whether `redis` is (or asks for) a Redis Cluster. */
export function isCluster (redis: unknown): boolean {
  // Not `'cluster' in redis`: a Redis instance has a cluster() command method.
  return redis instanceof Cluster || (typeof redis === 'object' && redis !== null && Object.hasOwn(redis, 'cluster'))
}

export function connect (redis: RedisSetting): Client {
  if (redis instanceof Redis || redis instanceof Cluster) return redis
  if (typeof redis === 'string') return new Redis(redis, CLIENT_DEFAULTS)
  if ('cluster' in redis) {
    // The Cluster turns its own offline queue off once connected (RedisStore.start).
    const { enableAutoPipelining, enableOfflineQueue, ...nodeDefaults } = CLIENT_DEFAULTS
    const options = redis.options ?? {}
    return new Cluster(redis.cluster, { enableAutoPipelining, ...options, redisOptions: { ...nodeDefaults, ...options.redisOptions } })
  }
  return new Redis({ ...CLIENT_DEFAULTS, ...redis })
}

/** QUIT with a bound, then cut the connection: shutdown must not hang on an unreachable Redis. */
export async function quit (client: Client): Promise<void> {
  if (client.status === 'end') return
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([client.quit(), new Promise((resolve) => { timer = setTimeout(resolve, 2000) })])
  } catch { /* already closing */ } finally {
    clearTimeout(timer)
    client.disconnect()
    if (client instanceof Cluster) stopSlotRefresh(client)
  }
}

/** Resolves once the client is connected; rejects if its first attempt fails. */
export async function whenReady (client: Redis): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error): void => {
      client.off('ready', settle).off('error', settle).off('end', ended)
      if (err === undefined) resolve()
      else reject(err)
    }
    const ended = (): void => settle(new Error('connection closed'))
    client.on('ready', settle).on('error', settle).on('end', ended)
  })
}
