import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import comet from '../../lib/index.ts'
import type { CometOptions, EventData, SendResult } from '../../lib/index.ts'
import { CometClient } from '../../lib/client/index.ts'
import type { CometMessage } from '../../lib/client/index.ts'
import WebSocket from 'ws'

// What an app writes as `declare module 'fastify-comet'` (the package's own name resolves to the built
// dist/ here, so the tests augment the source module it re-exports).
declare module '../../lib/client/events.ts' {
  interface CometEvents {
    invoice_paid: { invoice: string }
  }
}

test('sendToUser and publish check the data of declared events; others stay unknown', async () => {
  const app = Fastify()
  await app.register(comet, {})
  expect(app.comet.sendToUser(42, 'invoice_paid', { invoice: 'A-17' })).type.toBe<Promise<SendResult>>()
  expect(app.comet.sendToUser).type.not.toBeCallableWith(42, 'invoice_paid', { invoice: 17 })
  expect(app.comet.sendToUser).type.not.toBeCallableWith(42, 'invoice_paid', null)
  expect(app.comet.sendToUser).type.toBeCallableWith(42, 'anything_else', 17)
  expect(app.comet.sendToUsers).type.not.toBeCallableWith([42], 'invoice_paid', { invoice: 17 })
  expect(app.comet.sendToUsers).type.toBeCallableWith([42], 'invoice_paid', { invoice: 'A-17' })
  expect(app.comet.publish).type.not.toBeCallableWith('news', 'invoice_paid', { total: 1 })
  expect(app.comet.publish).type.toBeCallableWith('news', 'invoice_paid', { invoice: 'A-17' })
  const event: string = 'from_a_variable'
  expect(app.comet.sendToUser).type.toBeCallableWith(42, event, { anything: true })
  expect<EventData<'invoice_paid'>>().type.toBe<{ invoice: string }>()
  expect<EventData<'nope'>>().type.toBe<unknown>()
})

test('the client infers a declared event\'s data from the topic', () => {
  const client = new CometClient({ url: '/comet', userId: 42, hash: 'a-secret-of-16-chars', WebSocket })
  client.subscribe('msg.invoice_paid', (m) => {
    expect(m).type.toBe<CometMessage<{ invoice: string }>>()
    expect(m.data.invoice).type.toBe<string>()
  })
  client.subscribe('billing.invoice_paid', (m) => { expect(m.data).type.toBe<{ invoice: string }>() })
  client.subscribe('msg', (m) => { expect(m.data).type.toBe<unknown>() })
  client.subscribe('msg.other', (m) => { expect(m.data).type.toBe<unknown>() })
  expect(client.subscribe).type.not.toBeCallableWith('msg.invoice_paid', (m: CometMessage<{ invoice: number }>) => m)
  expect(client.publish).type.not.toBeCallableWith('web_room', 'invoice_paid', { invoice: 1 })
  expect(client.publish('web_room', 'invoice_paid', { invoice: 'A-17' })).type.toBe<Promise<string>>()
})

test('CometClient<Events> types a client with an explicit event map', () => {
  interface Chat { say: { text: string } }
  const client = new CometClient<Chat>({ url: '/comet', WebSocket })
  client.subscribe('web_room.say', (m) => { expect(m.data.text).type.toBe<string>() })
  client.subscribe('web_room.invoice_paid', (m) => { expect(m.data).type.toBe<unknown>() })
  expect(client.publish).type.not.toBeCallableWith('web_room', 'say', { text: 1 })
})

test('Fastify\'s register options are plugin options', () => {
  expect<CometOptions>().type.toBeAssignableFrom({ prefix: '/rt', logLevel: 'warn' as const, keyPrefix: 'app:' })
  expect<CometOptions>().type.not.toBeAssignableFrom({ logLevel: 'loud' })
  expect<CometOptions>().type.not.toBeAssignableFrom({ keyPrefix: 1 })
})
