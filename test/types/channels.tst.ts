import { expect, test } from 'tstyche'
import Fastify from 'fastify'
import comet from '../../lib/index.ts'
import type { ChannelInfo, ChannelStats, ClientPublishContext, CometOptions, HistoryResult, SubscribeContext } from '../../lib/index.ts'

test('channel API on app.comet', async () => {
  const app = Fastify()
  await app.register(comet, {})
  expect(app.comet.members('track_room')).type.toBe<Promise<string[]>>()
  expect(app.comet.channelStats('lobby')).type.toBe<Promise<ChannelStats>>()
  expect(app.comet.channels()).type.toBe<Promise<ChannelInfo[]>>()
  expect(app.comet.history('news', '1-0')).type.toBe<Promise<HistoryResult>>()
  expect(app.comet.members).type.not.toBeCallableWith(42)
})

test('channel options and hooks', () => {
  expect<CometOptions>().type.toBeAssignableFrom({
    presenceGrace: 2000,
    history: { news: { size: 100, ttl: 3_600_000 } },
    canSubscribe: async (ctx: SubscribeContext) => ctx.userId !== null,
    onClientPublish: (ctx: ClientPublishContext) => ctx.event === 'spam' ? false : { data: ctx.data }
  })
  expect<CometOptions>().type.not.toBeAssignableFrom({ history: { news: { ttl: 5 } } })
  expect<CometOptions>().type.not.toBeAssignableFrom({ canSubscribe: () => 'yes' })
})
