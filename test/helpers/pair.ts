import type { TestContext } from 'node:test'
import type { CometOptions } from '../../lib/index.ts'
import { startApp } from './app.ts'
import type { TestApp } from './app.ts'
import { startRedis } from './redis.ts'
import type { RedisServer } from './redis.ts'

/** Two real Fastify instances sharing one fresh redis-server: the smallest cluster. */
export async function startPair (t: TestContext, options: CometOptions = {}): Promise<{ a: TestApp, b: TestApp, redis: RedisServer }> {
  const redis = await startRedis()
  const a = await startApp({ redis: redis.url, ...options })
  const b = await startApp({ redis: redis.url, ...options })
  t.after(async () => {
    await Promise.all([a.app.close(), b.app.close()])
    await redis.stop()
  })
  return { a, b, redis }
}
