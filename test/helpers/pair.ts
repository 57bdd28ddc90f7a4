import type { TestContext } from 'node:test'
import type { CometOptions } from '../../lib/index.ts'
import { startApp } from './app.ts'
import type { TestApp } from './app.ts'
import { chosen, dropPrefix, sharedCluster, testPrefix } from './backends.ts'
import { startRedis } from './redis.ts'
import type { RedisServer } from './redis.ts'

/** Where a pair of instances share state: one fresh redis-server, or the file's Redis Cluster. */
export type PairBackend = 'redis' | 'cluster'
export const PAIR_BACKENDS = chosen<PairBackend>(['redis', 'cluster'])

/**
 * Two real Fastify instances sharing one fresh redis-server (the smallest deployment of several
 * instances), or sharing the test file's Redis Cluster under a prefix of their own (`redis` is then null).
 */
export async function startPair (t: TestContext, options: CometOptions = {}, backend: PairBackend = 'redis'): Promise<{ a: TestApp, b: TestApp, redis: RedisServer | null }> {
  if (backend === 'cluster') {
    const cluster = await sharedCluster()
    const prefix = options.keyPrefix ?? testPrefix()
    const shared = { redis: { cluster: cluster.startup }, keyPrefix: prefix, ...options }
    const a = await startApp(shared)
    const b = await startApp(shared)
    t.after(async () => {
      await Promise.all([a.app.close(), b.app.close()])
      dropPrefix(cluster, prefix)
    })
    return { a, b, redis: null }
  }
  const redis = await startRedis()
  const a = await startApp({ redis: redis.url, ...options })
  const b = await startApp({ redis: redis.url, ...options })
  t.after(async () => {
    await Promise.all([a.app.close(), b.app.close()])
    await redis.stop()
  })
  return { a, b, redis }
}
