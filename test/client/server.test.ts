import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import WebSocket from 'ws'
import comet from '../../lib/index.ts'
import { CometClient } from '../../lib/client/index.ts'
import type { CometClientOptions, CometMessage, CometStatus, StatusInfo } from '../../lib/client/index.ts'
import { HASH } from '../helpers/app.ts'
import { startRedis } from '../helpers/redis.ts'

// The client in Node (with the ws package) against the real plugin.

async function listen (options: Parameters<typeof comet>[1] = {}, port = 0): Promise<{ app: FastifyInstance, url: string, port: number }> {
  const app = Fastify({ logger: false })
  await app.register(comet, options)
  await app.listen({ port, host: '127.0.0.1' })
  const address = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${address.port}/comet`, port: address.port }
}

function client (url: string, options: Partial<CometClientOptions> = {}) {
  const statuses: Array<[CometStatus, StatusInfo]> = []
  const comet = new CometClient({ url, userId: '42', hash: HASH, WebSocket, reconnect: { baseDelay: 50, maxDelay: 200 }, window: null, ...options })
  comet.on('status', (status, info) => statuses.push([status, info]))
  return { comet, statuses }
}

async function until (what: string, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + 5000
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('receives private messages filtered by event, and channel messages', async (t) => {
  const { app, url } = await listen()
  t.after(() => app.close())
  await app.comet.registerAuth('42', HASH)
  const { comet } = client(url)
  t.after(() => comet.close())
  const all: string[] = []
  const invoices: unknown[] = []
  const news: CometMessage[] = []
  comet.subscribe('msg', (m) => all.push(m.event))
  comet.subscribe('msg.invoice', (m) => invoices.push(m.data))
  comet.subscribe('news.update', (m) => news.push(m))
  await until('open', () => comet.status === 'open')
  await until('subscribed', async () => {
    await app.comet.publish('news', 'update', { n: 1 })
    return news.length > 0
  })
  await app.comet.sendToUser('42', 'chat', 'hi')
  await app.comet.sendToUser('42', 'invoice', { total: 10 })
  await app.comet.publish('news', 'other', 'not for news.update')
  await until('messages', () => all.length === 2)
  assert.deepEqual(all, ['chat', 'invoice'])
  assert.deepEqual(invoices, [{ total: 10 }])
  assert.ok(news.every((m) => m.channel === 'news' && m.event === 'update'))
  assert.match(comet.lastMessageId ?? '', /^[0-9]+$/)
})

test('after its server shuts down it reconnects to the next one, gets what was queued and is resubscribed', async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const first = await listen({ redis: redis.url })
  const other = await listen({ redis: redis.url })
  t.after(() => other.app.close())
  await other.app.comet.registerAuth('42', HASH)
  const { comet, statuses } = client(first.url)
  t.after(() => comet.close())
  const got: string[] = []
  comet.subscribe('msg', (m) => got.push(String(m.data)))
  comet.subscribe('news', (m) => got.push(`news ${String(m.data)}`))
  await until('open', () => comet.status === 'open')
  await other.app.comet.sendToUser('42', 'chat', 'one')
  await until('one', () => got.includes('one'))

  await first.app.close()
  await until('a reconnect scheduled after 1001', () => statuses.some(([s, info]) => s === 'connecting' && info.code === 1001))
  const queued = await other.app.comet.sendToUser('42', 'chat', 'two')
  assert.equal(queued.queued, true)
  // The same address comes back (a restarted instance).
  const again = await listen({ redis: redis.url }, first.port)
  t.after(() => again.app.close())
  await until('two', () => got.includes('two'))
  await until('resubscribed', async () => {
    await other.app.comet.publish('news', 'update', 'three')
    return got.includes('news three')
  })
  assert.deepEqual(got.filter((m) => !m.startsWith('news')), ['one', 'two'])
})

test('a wrong hash ends in auth-failed, with no retry', async (t) => {
  const { app, url } = await listen()
  t.after(() => app.close())
  await app.comet.registerAuth('42', HASH)
  let sockets = 0
  app.server.on('upgrade', () => sockets++)
  const { comet, statuses } = client(url, { hash: 'not-the-right-hash-at-all' })
  t.after(() => comet.close())
  await until('auth-failed', () => comet.status === 'auth-failed')
  assert.deepEqual(statuses.at(-1), ['auth-failed', { code: 4401 }])
  await new Promise((resolve) => setTimeout(resolve, 500))
  assert.equal(sockets, 1)
})

test('web_ channels: publish resolves with the id the others receive, stamped with the sender', async (t) => {
  const { app, url } = await listen()
  t.after(() => app.close())
  await app.comet.registerAuth('42', HASH)
  await app.comet.registerAuth('7', HASH)
  const alice = client(url).comet
  const bob = client(url, { userId: '7' }).comet
  t.after(() => { alice.close(); bob.close() })
  const got: CometMessage[] = []
  bob.subscribe('web_chat.say', (m) => got.push(m))
  alice.subscribe('web_chat', (m) => got.push(m))
  await until('subscribed', async () => (await app.comet.channelStats('web_chat')).subscribers === 2)
  const id = await alice.publish('web_chat', 'say', { text: 'hi' })
  await until('bob got it', () => got.length === 1)
  assert.deepEqual(got, [{ channel: 'web_chat', event: 'say', data: { text: 'hi' }, id, userId: '42' }], 'the sender gets no copy')
  await assert.rejects(alice.publish('news', 'say', 1), { code: 'forbidden' })
})

test('track_ channels: members, and join / leave as events', async (t) => {
  const { app, url } = await listen({ presenceGrace: 50 })
  t.after(() => app.close())
  await app.comet.registerAuth('42', HASH)
  await app.comet.registerAuth('7', HASH)
  const alice = client(url).comet
  t.after(() => alice.close())
  const events: string[] = []
  alice.subscribe('track_room', (m) => events.push(`${m.event} ${String(m.userId)}`))
  await until('alice is a member', async () => (await alice.members('track_room')).includes('42'))
  const bob = client(url, { userId: '7' }).comet
  bob.subscribe('track_room.join', () => {})
  await until('bob joined', () => events.includes('join 7'))
  assert.deepEqual((await bob.members('track_room')).sort(), ['42', '7'])
  bob.close()
  await until('bob left', () => events.includes('leave 7'))
  assert.deepEqual(await alice.members('track_room'), ['42'])
})

test('history() reads what a channel with history kept', async (t) => {
  const { app, url } = await listen({ history: { news: { size: 10 } } })
  t.after(() => app.close())
  const reader = client(url, { userId: undefined, hash: undefined }).comet
  t.after(() => reader.close())
  const first = await app.comet.publish('news', 'update', 1)
  await app.comet.publish('news', 'update', 2)
  const all = await reader.history('news')
  assert.deepEqual(all.messages.map((m) => m.data), [1, 2])
  const after = await reader.history('news', first.id)
  assert.deepEqual({ recovered: after.recovered, data: after.messages.map((m) => m.data) }, { recovered: true, data: [2] })
  await assert.rejects(reader.history('sport'), { code: 'no_history' })
})

test('close() while the ws socket is still connecting throws nothing later', async (t) => {
  const { app, url } = await listen()
  t.after(() => app.close())
  const { comet } = client(url)
  comet.close()
  assert.equal(comet.status, 'closed')
  await new Promise((resolve) => setTimeout(resolve, 100))
})
