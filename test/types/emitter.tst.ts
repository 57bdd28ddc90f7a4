import { expect, test } from 'tstyche'
import { CometEmitter, errors } from '../../lib/emitter/index.ts'
import type { EmitterOptions, Presence, PublishResult, SendResult, ServerApi, UserSendResult } from '../../lib/emitter/index.ts'
import type { CometApi } from '../../lib/index.ts'

test('the emitter has the server API, with the same types', () => {
  const emitter = new CometEmitter({ redis: 'redis://127.0.0.1:6379', keyPrefix: 'app:', offlineQueue: false })
  expect(emitter).type.toBeAssignableTo<ServerApi>()
  expect<ServerApi>().type.toBe<Omit<CometApi, 'on' | 'off' | 'health'>>()
  expect(emitter.sendToUser(42, 'invoice_paid', { invoice: 'A-17' }, { idempotencyKey: 'inv-A-17' })).type.toBe<Promise<SendResult>>()
  expect(emitter.sendToUsers([42, '43'], 'invoice_paid', { invoice: 'A-17' })).type.toBe<Promise<UserSendResult[]>>()
  expect(emitter.publish('news', 'headline', null, { idempotencyKey: 'h1' })).type.toBe<Promise<PublishResult>>()
  expect(emitter.presence('42')).type.toBe<Promise<Presence>>()
  expect(emitter.close()).type.toBe<Promise<void>>()
  expect(emitter.sendToUser).type.not.toBeCallableWith(42, 'e', 1, { idempotencyKey: 5 })
  expect(new errors.IDEMPOTENCY_KEY('x').code).type.toBe<'FST_ERR_COMET_IDEMPOTENCY_KEY'>()
})

test('emitter options: redis is required, plugin-only options are not options', () => {
  expect<EmitterOptions>().type.not.toBeAssignableFrom({ keyPrefix: 'app:' })
  expect<EmitterOptions>().type.not.toBeAssignableFrom({ redis: 'redis://x', path: '/comet' })
  expect<EmitterOptions>().type.toBeAssignableFrom({ redis: 'redis://x', history: { news: { size: 10 } }, idempotencyTtl: 60_000 })
})
