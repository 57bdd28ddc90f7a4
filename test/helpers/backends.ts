import type { TestContext } from 'node:test'
import type { CometOptions } from '../../lib/index.ts'
import { startApp } from './app.ts'
import type { TestApp } from './app.ts'
import { startRedis } from './redis.ts'

/** The behaviour suite runs once per store: the same promises hold in memory and on Redis. */
export const BACKENDS = ['memory', 'redis'] as const
export type Backend = typeof BACKENDS[number]

/** Starts an app on the given backend (a fresh redis-server for 'redis'), closed after the test. */
export async function appOn (t: TestContext, backend: Backend, options: CometOptions = {}): Promise<TestApp> {
  const redis = backend === 'redis' ? await startRedis() : null
  const started = await startApp({ ...(redis === null ? {} : { redis: redis.url }), ...options })
  t.after(async () => {
    await started.app.close()
    await redis?.stop()
  })
  return started
}
