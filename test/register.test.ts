import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import type { IncomingMessage } from 'node:http'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import websocket from '@fastify/websocket'
import { Redis } from 'ioredis'
import WebSocket from 'ws'
import comet, { PROTOCOL } from '../lib/index.ts'
import type { CometOptions } from '../lib/index.ts'
import { CometClient } from '../lib/client/index.ts'
import { HASH } from './helpers/app.ts'
import { TestClient } from './helpers/client.ts'
import { startRedis } from './helpers/redis.ts'

// Fastify's register options (prefix, logLevel), the Redis keyPrefix, the subprotocol, and an app's own
// @fastify/websocket registered before or after the plugin.

async function listening (app: FastifyInstance): Promise<string> {
  await app.listen({ port: 0, host: '127.0.0.1' })
  return `127.0.0.1:${(app.server.address() as { port: number }).port}`
}

/** The app's log lines, parsed. */
function logged (): { lines: Array<Record<string, unknown>>, stream: Writable } {
  const lines: Array<Record<string, unknown>> = []
  const stream = new Writable({
    write (chunk, _enc, done) {
      for (const line of chunk.toString().split('\n')) if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>)
      done()
    }
  })
  return { lines, stream }
}

/** An upgrade's HTTP status: 101 when the socket opened, else the refusal's status code. */
async function upgrade (url: string, options: WebSocket.ClientOptions = {}, protocols?: string[]): Promise<{ status: number, protocol: string }> {
  const ws = new WebSocket(url, protocols, options)
  ws.on('error', () => {})
  const outcome = await Promise.race([
    once(ws, 'open').then(() => ({ status: 101, protocol: ws.protocol })),
    once(ws, 'unexpected-response').then(([, res]) => ({ status: (res as IncomingMessage).statusCode ?? 0, protocol: '' }))
  ])
  ws.terminate()
  return outcome
}

test('prefix moves every route of the plugin, and composes with the app\'s own prefixes', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  const routes: string[] = []
  app.addHook('onRoute', (route) => { routes.push(route.url) })
  await app.register(comet, { prefix: '/rt' })
  app.get('/mine', async () => 'mine')
  await app.register(async (v1) => { await v1.register(comet, { prefix: '/rt', path: '/push', keyPrefix: 'other:' }) }, { prefix: '/v1' })
  const host = await listening(app)

  const ours = routes.filter((url) => url !== '/mine')
  assert.ok(ours.length >= 4, `the plugin's routes were seen: ${ours.join(' ')}`)
  for (const url of ours) assert.match(url, /^(\/v1)?\/rt\//, `${url} is under the prefix`)
  assert.ok(routes.includes('/rt/comet') && routes.includes('/rt/comet/client.js'))
  assert.ok(routes.includes('/v1/rt/push') && routes.includes('/v1/rt/push/client.js'))

  await app.comet.registerAuth('p', HASH)
  const client = await TestClient.open(`ws://${host}/rt/comet`)
  t.after(() => client.close())
  await client.auth('p', HASH)
  await app.comet.sendToUser('p', 'e', 1)
  assert.equal((await client.type('message')).data, 1)
  assert.equal((await upgrade(`ws://${host}/comet`)).status, 404, 'nothing left at the unprefixed path')
  assert.equal((await upgrade(`ws://${host}/v1/rt/push`)).status, 101)
  assert.equal((await app.inject('/comet/client.js')).statusCode, 404)
  const bundle = await app.inject('/rt/comet/client.js')
  assert.equal(bundle.statusCode, 200, 'the client bundle is served under the prefix (npm run build makes it)')
  assert.match(bundle.body, /CometClient/)
})

test('a prefix that is not a route (an old Redis key prefix) fails with FST_ERR_COMET_OPTIONS naming keyPrefix', async () => {
  for (const options of [{ prefix: 'comet:' }, { prefix: 5 }, { logLevel: 'loud' }, { logSerializers: 'no' }]) {
    const app = Fastify()
    await assert.rejects(async () => await app.register(comet, options as CometOptions).ready(), (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FST_ERR_COMET_OPTIONS', JSON.stringify(options))
      if ('prefix' in options) assert.match(err.message, /keyPrefix/)
      return true
    })
    await app.close()
  }
})

test('logLevel sets the level of the plugin\'s own log lines and of its routes, up or down from the app\'s', async (t) => {
  for (const [appLevel, pluginLevel, shown] of [['info', 'warn', false], ['warn', 'info', true]] as const) {
    const { lines, stream } = logged()
    const app = Fastify({ logger: { level: appLevel, stream } })
    t.after(() => app.close())
    await app.register(comet, { logLevel: pluginLevel })
    app.get('/mine', async () => 'mine')
    const host = await listening(app)
    // A plugin log line at info: an upgrade from another site is refused.
    assert.equal((await upgrade(`ws://${host}/comet`, { origin: 'https://evil.example' })).status, 403)
    await fetch(`http://${host}/comet/client.js`)
    await fetch(`http://${host}/mine`)
    const refused = lines.filter((l) => l['msg'] === 'comet: upgrade refused: origin not allowed')
    const requests = lines.filter((l) => l['msg'] === 'incoming request').map((l) => (l['req'] as { url: string }).url)
    assert.equal(refused.length, shown ? 1 : 0, `plugin line with logLevel ${pluginLevel} on an app at ${appLevel}`)
    assert.equal(requests.includes('/comet/client.js'), shown, 'the plugin\'s route logs at the plugin\'s level')
    assert.equal(requests.includes('/comet'), shown, 'and so does its socket route')
    assert.equal(requests.includes('/mine'), appLevel === 'info', 'the app\'s own routes keep the app\'s level')
  }
})

test('keyPrefix names every Redis key and pub/sub channel; the default is comet:', async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  for (const keyPrefix of ['kp:', undefined]) {
    await admin.flushall()
    const app = Fastify()
    await app.register(comet, { redis: redis.url, history: { news: { size: 5 } }, ...(keyPrefix === undefined ? {} : { keyPrefix }) })
    const host = await listening(app)
    await app.comet.registerAuth('k', HASH)
    const client = await TestClient.open(`ws://${host}/comet`)
    await client.auth('k', HASH)
    client.send({ type: 'subscribe', channel: 'track_room', ref: 1 })
    await client.type('subscribed')
    await app.comet.sendToUser('k', 'e', 1)
    await app.comet.publish('news', 'e', 2)
    await client.type('message')
    const keys = await admin.keys('*')
    const channels = await admin.pubsub('CHANNELS', '*') as string[]
    const expected = keyPrefix ?? 'comet:'
    assert.ok(keys.length >= 4, `keys were written: ${keys.join(' ')}`)
    for (const name of [...keys, ...channels]) assert.ok(name.startsWith(expected), `${name} starts with ${expected}`)
    assert.equal(await admin.exists(`${expected}{u:k}:auth`), 1)
    client.close()
    await app.close()
  }
})

test('the subprotocol: comet.v1 is chosen when offered, implied when none is, and others are refused before the socket opens', async (t) => {
  for (const own of [false, true]) {
    const app = Fastify()
    t.after(() => app.close())
    if (own) await app.register(websocket)
    await app.register(comet)
    const url = `ws://${await listening(app)}/comet`
    assert.deepEqual(await upgrade(url, {}, [PROTOCOL]), { status: 101, protocol: 'comet.v1' })
    assert.deepEqual(await upgrade(url, {}, ['graphql-ws', PROTOCOL]), { status: 101, protocol: 'comet.v1' }, `own @fastify/websocket: ${own}`)
    assert.deepEqual(await upgrade(url), { status: 101, protocol: '' })
    assert.equal((await upgrade(url, {}, ['comet.v2'])).status, 400)
  }
})

test('the client offers comet.v1', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(comet)
  const url = `ws://${await listening(app)}/comet`
  await app.comet.registerAuth('c', HASH)
  const protocols: string[] = []
  class Recording extends WebSocket {
    constructor (address: string, protocol?: string | string[]) {
      super(address, protocol)
      this.on('open', () => protocols.push(this.protocol))
    }
  }
  const client = new CometClient({ url, userId: 'c', hash: HASH, WebSocket: Recording, window: null })
  t.after(() => client.close())
  await new Promise<void>((resolve) => client.on('ready', () => resolve()))
  assert.deepEqual(protocols, ['comet.v1'])
})

test('an app that registers @fastify/websocket after the plugin keeps its own server, and both routes work', async (t) => {
  const { lines, stream } = logged()
  const app = Fastify({ logger: { level: 'warn', stream } })
  t.after(() => app.close())
  await app.register(comet, { prefix: '/rt' })
  await app.register(websocket)
  app.get('/own', { websocket: true }, (socket) => socket.send('hello from the app'))
  const host = await listening(app)
  assert.ok(app.websocketServer, 'the app\'s decorator is its own')

  await app.comet.registerAuth('a', HASH)
  const client = await TestClient.open(`ws://${host}/rt/comet`)
  await client.auth('a', HASH)
  await app.comet.sendToUser('a', 'e', 'pushed')
  assert.equal((await client.type('message')).data, 'pushed')
  const own = new WebSocket(`ws://${host}/own`)
  const [hello] = await once(own, 'message')
  assert.equal(String(hello), 'hello from the app')
  own.close()
  assert.deepEqual(lines.filter((l) => l['level'] as number >= 40), [], 'no upgrade is handled twice (no warning)')

  const closing = app.close()
  assert.equal(await client.closed, 1001, 'our sockets close as ours: 1001')
  await closing
})
