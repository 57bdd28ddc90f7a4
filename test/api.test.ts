import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { Redis } from 'ioredis'
import comet from '../lib/index.ts'
import { appOn } from './helpers/backends.ts'
import { startApp, HASH } from './helpers/app.ts'
import { TestClient } from './helpers/client.ts'
import { startRedis } from './helpers/redis.ts'

test('every public method rejects bad arguments with a coded error', async (t) => {
  const { app } = await appOn(t, 'memory', { maxPayload: 1024 })
  const c = app.comet
  const cycle: Record<string, unknown> = {}
  cycle.self = cycle
  const cases: Array<[string, () => Promise<unknown>, string]> = [
    ['user id with a space', () => c.sendToUser('a b', 'e', 1), 'FST_ERR_COMET_USER_ID'],
    ['user id too long', () => c.sendToUser('x'.repeat(65), 'e', 1), 'FST_ERR_COMET_USER_ID'],
    ['empty user id', () => c.presence(''), 'FST_ERR_COMET_USER_ID'],
    ['fractional user id', () => c.isOnline(1.5), 'FST_ERR_COMET_USER_ID'],
    ['object user id', () => c.revokeAuth({} as unknown as string), 'FST_ERR_COMET_USER_ID'],
    ['bad event', () => c.sendToUser('u', 'bad.event', 1), 'FST_ERR_COMET_EVENT'],
    ['missing event', () => c.sendToUser('u', undefined as unknown as string, 1), 'FST_ERR_COMET_EVENT'],
    ['BigInt data', () => c.sendToUser('u', 'e', 10n), 'FST_ERR_COMET_DATA'],
    ['cyclic data', () => c.sendToUser('u', 'e', cycle), 'FST_ERR_COMET_DATA'],
    ['undefined data', () => c.sendToUser('u', 'e', undefined), 'FST_ERR_COMET_DATA'],
    ['function data', () => c.publish('news', 'e', () => 1), 'FST_ERR_COMET_DATA'],
    ['data over maxPayload', () => c.sendToUser('u', 'e', 'x'.repeat(1024)), 'FST_ERR_COMET_PAYLOAD_TOO_LARGE'],
    ['channel msg', () => c.publish('msg', 'e', 1), 'FST_ERR_COMET_CHANNEL'],
    ['bad channel', () => c.publish('a/b', 'e', 1), 'FST_ERR_COMET_CHANNEL'],
    ['publish over maxPayload', () => c.publish('news', 'e', 'x'.repeat(1024)), 'FST_ERR_COMET_PAYLOAD_TOO_LARGE'],
    ['short hash', () => c.registerAuth('u', 'short'), 'FST_ERR_COMET_HASH'],
    ['hash not a string', () => c.registerAuth('u', 12345 as unknown as string), 'FST_ERR_COMET_HASH'],
    ['zero ttl', () => c.registerAuth('u', HASH, { ttl: 0 }), 'FST_ERR_COMET_TTL'],
    ['string ttl', () => c.registerAuth('u', HASH, { ttl: '5' as unknown as number }), 'FST_ERR_COMET_TTL']
  ]
  for (const [what, call, code] of cases) {
    await assert.rejects(call(), (err: Error & { code: string }) => {
      assert.equal(err.code, code, what)
      assert.ok(err.message.length > 20, `${what}: the message says what to fix`)
      return true
    }, what)
  }
  const big = await c.sendToUser('u', 'e', 'x'.repeat(900))
  assert.equal(big.queued, true, 'a message just under maxPayload is accepted')
})

test('numbers are accepted as user ids and normalized to strings', async (t) => {
  const { app, url } = await appOn(t, 'memory')
  await app.comet.registerAuth(7, HASH)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  assert.equal((await client.auth('7', HASH)).userId, '7')
  await app.comet.sendToUser(7, 'e', null)
  assert.equal((await client.type('message')).data, null)
})

test('invalid options fail at register time with FST_ERR_COMET_OPTIONS', async () => {
  const bad: unknown[] = [
    { maxDevices: 0 },
    { maxDevices: 1.5 },
    { onDeviceLimit: 'drop' },
    { path: 'comet' },
    { keyPrefix: 'a{b}' },
    { heartbeatInterval: '1000' },
    { offlineQueue: { maxMessages: 0 } },
    { offlineQueue: 'yes' },
    { serveClient: 'no' },
    { redis: 5 },
    { maxPayload: 10 },
    { unknownOption: true }
  ]
  for (const options of bad) {
    const app = Fastify()
    await assert.rejects(async () => await app.register(comet, options as never).ready(), { code: 'FST_ERR_COMET_OPTIONS' }, JSON.stringify(options))
    await app.close()
  }
})

test('an unreachable Redis at start fails registration with FST_ERR_COMET_UNAVAILABLE', async () => {
  const app = Fastify()
  await assert.rejects(async () => await app.register(comet, { redis: { port: 1, maxRetriesPerRequest: 0, retryStrategy: () => null } }).ready(), { code: 'FST_ERR_COMET_UNAVAILABLE' })
  await app.close()
})

test('an ioredis instance passed in is used and left open; our own connections are closed', async (t) => {
  const redis = await startRedis()
  const client = new Redis(redis.url)
  t.after(async () => {
    client.disconnect()
    await redis.stop()
  })
  const { app, url } = await startApp({ redis: client, keyPrefix: 'mine:' })
  await app.comet.registerAuth('own', HASH)
  assert.equal(await client.exists('mine:{u:own}:auth'), 1, 'keys live under keyPrefix, with the user hash tag')
  const ws = await TestClient.open(url)
  await ws.auth('own', HASH)
  await app.close()
  assert.equal(client.status, 'ready', 'the app\'s client stays open')
  const clients = await client.client('LIST') as string
  assert.equal(clients.trim().split('\n').length, 1, 'only the app\'s own connection remains')
})

test('works when the app registered @fastify/websocket itself', async (t) => {
  const app = Fastify()
  await app.register(websocket)
  await app.register(comet, { path: '/push' })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  await app.comet.registerAuth('w', HASH)
  const client = await TestClient.open(`ws://127.0.0.1:${port}/push`)
  await client.auth('w', HASH)
  await app.comet.sendToUser('w', 'e', 1)
  await client.type('message')
  assert.equal(await app.comet.isOnline('w'), true)
  const closing = app.close()
  // Its own preClose runs first and closes sockets without a code (1005); ours still removes presence.
  assert.equal(await client.closed, 1005)
  await closing
  assert.equal(client.messages().length, 1)
})

test('no hash ever reaches the log, at trace level, through the whole auth flow', async (t) => {
  const lines: string[] = []
  const stream = new Writable({ write (chunk, _enc, done) { lines.push(chunk.toString()); done() } })
  const redis = await startRedis()
  const app = Fastify({ logger: { level: 'trace', stream } })
  await app.register(comet, { redis: redis.url, maxDevices: 1 })
  t.after(async () => {
    await app.close()
    await redis.stop()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  const url = `ws://127.0.0.1:${port}/comet`
  const secret = 'very-secret-hash-value-123'
  await app.comet.registerAuth('logme', secret)
  const ok = await TestClient.open(url)
  await ok.auth('logme', secret)
  const limited = await TestClient.open(url)
  limited.send({ type: 'auth', userId: 'logme', hash: secret })
  await limited.closed
  const wrong = await TestClient.open(url)
  wrong.send({ type: 'auth', userId: 'logme', hash: 'wrong-but-also-secret-hash' })
  await wrong.closed
  await app.comet.revokeAuth('logme')
  await ok.closed
  assert.ok(lines.length > 5, 'the flow was logged')
  assert.ok(lines.some((l) => l.includes('authentication failed')))
  for (const line of lines) {
    assert.ok(!line.includes(secret) && !line.includes('wrong-but-also-secret-hash'), `hash in log line: ${line}`)
  }
})
