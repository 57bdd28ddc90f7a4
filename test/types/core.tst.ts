import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import { Redis } from 'ioredis'
import comet, { errors } from '../../lib/index.ts'
import type { CometOptions, Presence, PublishResult, SendResult, UserSendResult } from '../../lib/index.ts'

test('app.comet is typed wherever the app is', async () => {
  const app = Fastify()
  await app.register(comet, { redis: 'redis://127.0.0.1:6379' })
  expect(app.comet.registerAuth(42, 'a-long-enough-secret-hash', { ttl: 1000 })).type.toBe<Promise<void>>()
  expect(app.comet.createAuth(42, { ttl: 1000 })).type.toBe<Promise<string>>()
  expect(app.comet.createAuth('42')).type.toBe<Promise<string>>()
  expect(app.comet.revokeAuth('42')).type.toBe<Promise<void>>()
  expect(app.comet.sendToUser(42, 'event1', { any: ['json'] })).type.toBe<Promise<SendResult>>()
  expect(app.comet.sendToUsers([42, 'b'], 'event1', { any: ['json'] })).type.toBe<Promise<UserSendResult[]>>()
  expect(app.comet.sendToUsers(['a'] as const, 'event1', 1)).type.toBe<Promise<UserSendResult[]>>()
  expect<UserSendResult>().type.toBe<{ userId: string, id: string, queued: boolean }>()
  expect(app.comet.publish('news', 'update', null)).type.toBe<Promise<PublishResult>>()
  expect(app.comet.isOnline('42')).type.toBe<Promise<boolean>>()
  expect(app.comet.presence('42')).type.toBe<Promise<Presence>>()
  expect<Presence['lastSeen']>().type.toBe<Date | null>()
  expect<SendResult>().type.toBe<{ id: string, queued: boolean }>()

  expect(app.comet.sendToUser).type.not.toBeCallableWith(42, 'event1')
  expect(app.comet.sendToUser).type.not.toBeCallableWith({ id: 42 }, 'event1', 1)
  expect(app.comet.sendToUsers).type.not.toBeCallableWith(42, 'event1', 1)
  expect(app.comet.sendToUsers).type.not.toBeCallableWith([{ id: 42 }], 'event1', 1)
  expect(app.comet.sendToUsers).type.not.toBeCallableWith([42], 'event1')
  expect(app.comet.registerAuth).type.not.toBeCallableWith(42, 'hash', { ttl: '1s' })
})

test('options', () => {
  expect<CometOptions>().type.toBeAssignableFrom({ redis: new Redis({ lazyConnect: true }), maxDevices: 4, onDeviceLimit: 'evict-oldest' as const })
  expect<CometOptions>().type.toBeAssignableFrom({ offlineQueue: false as const, resume: { size: 50 } })
  expect<CometOptions>().type.not.toBeAssignableFrom({ onDeviceLimit: 'drop' })
  expect<CometOptions>().type.not.toBeAssignableFrom({ maxDevices: '16' })
  expect<CometOptions>().type.not.toBeAssignableFrom({ offlineQueue: true })
  expect<CometOptions>().type.toBeAssignableFrom({ frameRate: { rate: 20 }, maxAnonymousPerAddress: false as const, allowAnonymous: false })
  expect<CometOptions>().type.toBeAssignableFrom({ frameRate: false as const, maxAnonymousPerAddress: 10 })
  expect<CometOptions>().type.not.toBeAssignableFrom({ frameRate: 50 })
})

test('coded errors', () => {
  expect(new errors.UNAVAILABLE('down').code).type.toBe<'FST_ERR_COMET_UNAVAILABLE'>()
})
