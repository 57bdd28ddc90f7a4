import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import comet, { verifyWebhook } from '../../lib/index.ts'
import type { ServerEvent, CometOptions, OfflineEvent, OnlineEvent } from '../../lib/index.ts'

test('app.comet.on gives each listener its event type', async () => {
  const app = Fastify()
  await app.register(comet)
  app.comet.on('online', (event) => {
    expect(event).type.toBe<OnlineEvent>()
    expect(event.userId).type.toBe<string>()
  })
  app.comet.on('offline', async (event) => {
    expect(event.lastSeen).type.toBe<string | null>()
  })
  app.comet.on('dropped', (event) => { expect(event.count).type.toBe<number>() })
  app.comet.on('join', (event) => { expect(event.channel).type.toBe<string>() })
  const listener = (event: OfflineEvent): void => { expect(event.type).type.toBe<'offline'>() }
  app.comet.off('offline', listener)
  expect(app.comet.on).type.not.toBeCallableWith('online', listener)
  expect(app.comet.on).type.not.toBeCallableWith('connected', () => {})
  expect<ServerEvent['type']>().type.toBe<'online' | 'offline' | 'join' | 'leave' | 'occupied' | 'vacated' | 'dropped'>()
})

test('webhooks and verifyWebhook', () => {
  expect<CometOptions>().type.toBeAssignableFrom({ webhooks: [{ url: 'https://x', secret: 's', types: ['online' as const], retryFor: 1000 }] })
  expect<CometOptions>().type.not.toBeAssignableFrom({ webhooks: [{ url: 'https://x', secret: 's', types: ['connected'] }] })
  expect<CometOptions>().type.not.toBeAssignableFrom({ webhooks: [{ url: 'https://x' }] })
  expect(verifyWebhook('{}', { 'x-comet-timestamp': '1' }, 'secret')).type.toBe<boolean>()
  expect(verifyWebhook(Buffer.from('{}'), new Headers(), 'secret', { tolerance: 60 })).type.toBe<boolean>()
  expect(verifyWebhook).type.not.toBeCallableWith({}, {}, 'secret')
})
