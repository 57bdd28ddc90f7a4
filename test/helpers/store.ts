import type { TestContext } from 'node:test'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import { RedisStore } from '../../lib/store/redis/index.ts'
import type { BusHandlers, StoreSettings } from '../../lib/store/types.ts'
import { startRedis } from './redis.ts'
import { MESSAGE_TAIL } from '../../lib/protocol/frames.ts'
import { USER_STATUS } from '../../lib/protocol/names.ts'

/** Store settings for tests that drive a store directly, without the plugin. */
export const STORE_SETTINGS: StoreSettings = {
  keyPrefix: 'comet:',
  messageTail: MESSAGE_TAIL,
  statusChannel: USER_STATUS,
  maxDevices: 10,
  evictOldest: false,
  queue: { maxMessages: 100, ttl: 60_000 },
  resume: { size: 100, ttl: 60_000 },
  presenceTtl: 75_000,
  presenceGrace: 2000,
  lastSeenTtl: 60_000
}

export const NO_HANDLERS: BusHandlers = { user () {}, control () {}, channel () {}, status () {}, resync () {} }

/** A started RedisStore on a fresh redis-server and a client to look inside it, all stopped after the test. */
export async function redisStore (t: TestContext, settings = STORE_SETTINGS, handlers = NO_HANDLERS): Promise<{ store: RedisStore, admin: Redis }> {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const store = new RedisStore(redis.url, settings, Fastify().log)
  await store.start(handlers)
  t.after(() => store.close())
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  return { store, admin }
}
