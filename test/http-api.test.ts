import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import Fastify from 'fastify'
import swagger from '@fastify/swagger'
import comet from '../lib/index.ts'
import type { CometOptions } from '../lib/index.ts'
import { HASH } from './helpers/app.ts'
import { appOn } from './helpers/backends.ts'
import type { Backend } from './helpers/backends.ts'
import { member } from './helpers/channels.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { startRedis } from './helpers/redis.ts'
import { startApp } from './helpers/app.ts'

const KEY = 'k'.repeat(32)
const NEXT_KEY = 'n'.repeat(40)

interface Api {
  url: string
  app: Awaited<ReturnType<typeof appOn>>['app']
  call (method: string, body?: unknown, init?: { key?: string | null, raw?: string, headers?: Record<string, string> }): Promise<{ status: number, body: any }>
}

async function apiOn (t: TestContext, backend: Backend, options: CometOptions = {}): Promise<Api> {
  const { app, url } = await appOn(t, backend, { api: { keys: [KEY, NEXT_KEY] }, ...options })
  const base = url.replace(/^ws/, 'http')
  return {
    app,
    url,
    async call (method, body, init = {}) {
      const headers: Record<string, string> = { 'content-type': 'application/json', ...init.headers }
      const key = init.key === undefined ? KEY : init.key
      if (key !== null) headers.authorization = `Bearer ${key}`
      const res = await fetch(`${base}/api/${method}`, { method: 'POST', headers, body: init.raw ?? JSON.stringify(body ?? {}) })
      return { status: res.status, body: await res.json() }
    }
  }
}

test('HTTP API: every method over HTTP does what app.comet does', async (t) => {
  const api = await apiOn(t, 'memory', { history: { news: { size: 10 } }, presenceGrace: 0 })
  assert.deepEqual(await api.call('registerAuth', { userId: 'u', hash: HASH, ttl: 60_000 }), { status: 200, body: { result: null } })
  assert.deepEqual(await api.call('presence', { userId: 'u' }), { status: 200, body: { result: { online: false, devices: 0, lastSeen: null } } })
  const device = await member(api.url, 'u', ['news', 'track_room'])
  t.after(() => device.close())

  const sent = await api.call('sendToUser', { userId: 'u', event: 'invoice_paid', data: { invoice: 'A-17' } })
  assert.equal(sent.status, 200)
  assert.equal(sent.body.result.queued, false)
  const message = await device.next((f) => f.type === 'message' && f.channel === 'msg')
  assert.deepEqual([message.id, message.data], [sent.body.result.id, { invoice: 'A-17' }])
  const again = await api.call('sendToUser', { userId: 'u', event: 'invoice_paid', data: 1, idempotencyKey: 'inv-A-17' })
  assert.deepEqual((await api.call('sendToUser', { userId: 'u', event: 'invoice_paid', data: 1, idempotencyKey: 'inv-A-17' })).body, again.body)

  const published = await api.call('publish', { channel: 'news', event: 'headline', data: null })
  assert.equal((await device.next((f) => f.type === 'message' && f.channel === 'news')).id, published.body.result.id)
  assert.deepEqual((await api.call('history', { channel: 'news' })).body.result.messages.map((m: any) => m.id), [published.body.result.id])
  assert.deepEqual((await api.call('history', { channel: 'news', since: published.body.result.id })).body.result, { recovered: true, messages: [] })
  assert.deepEqual(await api.call('isOnline', { userId: 'u' }), { status: 200, body: { result: true } })
  const presence = (await api.call('presence', { userId: 'u' })).body.result
  assert.deepEqual([presence.online, presence.devices], [true, 1])
  assert.ok(!Number.isNaN(Date.parse(presence.lastSeen)) && presence.lastSeen === new Date(presence.lastSeen).toISOString(), 'Dates travel as ISO strings')
  assert.deepEqual(await api.call('members', { channel: 'track_room' }), { status: 200, body: { result: ['u'] } })
  assert.deepEqual(await api.call('channelStats', { channel: 'news' }), { status: 200, body: { result: { subscribers: 1, users: 1 } } })
  await eventually(async () => (await api.call('channels')).body.result.length === 2, 'channels() lists both channels')
  assert.deepEqual((await api.call('channels')).body.result, [
    { channel: 'news', subscribers: 1, users: 1 },
    { channel: 'track_room', subscribers: 1, users: 1 }
  ])
  assert.deepEqual(await api.call('revokeAuth', { userId: 'u' }), { status: 200, body: { result: null } })
  assert.equal(await device.closed, 4401)

  const created = await api.call('createAuth', { userId: 'v', ttl: 60_000 })
  assert.equal(created.status, 200)
  assert.match(created.body.result, /^[A-Za-z0-9_-]{43}$/, 'a 256-bit base64url secret')
  const v = await TestClient.open(api.url)
  t.after(() => v.close())
  assert.equal((await v.auth('v', created.body.result)).type, 'ready', 'the created secret authenticates')
})

test('HTTP API: Bearer keys, compared against each key; missing or wrong → 401', async (t) => {
  const api = await apiOn(t, 'memory')
  const body = { userId: 'u', event: 'e', data: 1 }
  for (const key of [null, '', 'k'.repeat(31), 'k'.repeat(33), KEY.toUpperCase()]) {
    const res = await api.call('sendToUser', body, { key })
    assert.equal(res.status, 401, String(key))
    assert.equal(res.body.error.code, 'FST_ERR_COMET_API_KEY')
  }
  assert.equal((await api.call('sendToUser', body, { key: null, headers: { authorization: `Basic ${KEY}` } })).status, 401)
  assert.equal((await api.call('nope', body, { key: 'wrong' })).status, 401, 'no key, no hint about which methods exist')
  assert.equal((await api.call('batch', { commands: [] }, { key: 'wrong' })).status, 401)
  assert.equal((await api.call('sendToUser', body, { key: NEXT_KEY })).status, 200, 'every listed key works (rotation)')
  assert.equal((await api.call('sendToUser', body, { key: null, headers: { authorization: `bearer ${KEY}` } })).status, 200)
})

test('HTTP API: 400 with the method\'s coded error, 404 for an unknown method, 413 over bodyLimit', async (t) => {
  const api = await apiOn(t, 'memory', { api: { keys: [KEY], bodyLimit: 2048 } })
  const cases: Array<[string, unknown, number, string]> = [
    ['sendToUser', { userId: 'not valid', event: 'e', data: 1 }, 400, 'FST_ERR_COMET_USER_ID'],
    ['sendToUser', { userId: 'u', event: 'e' }, 400, 'FST_ERR_COMET_DATA'],
    ['sendToUser', { userId: 'u', event: 'e', data: 1, idempotencyKey: 'a b' }, 400, 'FST_ERR_COMET_IDEMPOTENCY_KEY'],
    ['sendToUser', { userId: 'u', event: 'e', data: 1, idempotency_key: 'x' }, 400, 'FST_ERR_COMET_API_PARAMS'],
    ['sendToUser', [1, 2], 400, 'FST_ERR_COMET_API_PARAMS'],
    ['publish', { channel: 'msg', event: 'e', data: 1 }, 400, 'FST_ERR_COMET_CHANNEL'],
    ['registerAuth', { userId: 'u', hash: 'short' }, 400, 'FST_ERR_COMET_HASH'],
    ['registerAuth', { userId: 'u', hash: HASH, ttl: -1 }, 400, 'FST_ERR_COMET_TTL'],
    ['history', { channel: 'news' }, 400, 'FST_ERR_COMET_HISTORY'],
    ['batch', { commands: 'all' }, 400, 'FST_ERR_COMET_API_PARAMS'],
    ['batch', { commands: Array.from({ length: 1001 }, () => ({ method: 'channels' })) }, 413, 'FST_ERR_COMET_API_BODY_TOO_LARGE'],
    ['sendToUser', { userId: 'u', event: 'e', data: 'x'.repeat(3000) }, 413, 'FST_ERR_COMET_API_BODY_TOO_LARGE'],
    ['sendUser', { userId: 'u' }, 404, 'FST_ERR_COMET_API_METHOD'],
    ['close', {}, 404, 'FST_ERR_COMET_API_METHOD']
  ]
  for (const [method, body, status, code] of cases) {
    const res = await api.call(method, body)
    assert.equal(res.status, status, `${method} ${JSON.stringify(body).slice(0, 80)}`)
    assert.equal(res.body.error.code, code, `${method} ${JSON.stringify(body).slice(0, 80)}`)
    assert.equal(typeof res.body.error.message, 'string')
  }
  const bad = await api.call('sendToUser', undefined, { raw: '{"userId":' })
  assert.deepEqual([bad.status, bad.body.error.code], [400, 'FST_ERR_COMET_API_PARAMS'])
  const big = await apiOn(t, 'memory', { api: { keys: [KEY], bodyLimit: 200_000 } })
  const many = await big.call('batch', { commands: Array.from({ length: 1001 }, () => ({ method: 'channels' })) })
  assert.deepEqual([many.status, many.body.error.code], [400, 'FST_ERR_COMET_API_PARAMS'], 'at most 1000 commands')
  const thousand = await big.call('batch', { commands: Array.from({ length: 1000 }, () => ({ method: 'channels' })) })
  assert.equal(thousand.body.replies.length, 1000)
})

test('HTTP API: a batch runs each command on its own, in order', async (t) => {
  const api = await apiOn(t, 'memory')
  const res = await api.call('batch', {
    commands: [
      { method: 'registerAuth', params: { userId: 'u', hash: HASH } },
      { method: 'sendToUser', params: { userId: 'u', event: 'e', data: 1 } },
      { method: 'sendToUser', params: { userId: 'bad id', event: 'e', data: 2 } },
      { method: 'sendToUser', params: { userId: 'u', event: 'e', data: 3 } },
      { method: 'close' },
      { method: 'revokeAuth', params: { userId: 'u' } },
      { method: 'registerAuth', params: { userId: 'u', hash: HASH } },
      { params: {} },
      { method: 'isOnline', params: { userId: 'u' } }
    ]
  })
  assert.equal(res.status, 200)
  const replies = res.body.replies
  assert.equal(replies.length, 9)
  assert.deepEqual(replies[0], { result: null })
  assert.equal(replies[1].result.queued, true)
  assert.equal(replies[2].error.code, 'FST_ERR_COMET_USER_ID')
  assert.ok(BigInt(replies[3].result.id) > BigInt(replies[1].result.id))
  assert.equal(replies[4].error.code, 'FST_ERR_COMET_API_METHOD')
  assert.deepEqual(replies.slice(5, 7), [{ result: null }, { result: null }])
  assert.equal(replies[7].error.code, 'FST_ERR_COMET_API_PARAMS')
  assert.deepEqual(replies[8], { result: false })
  // The register after the revoke stands: commands ran in order.
  const device = await TestClient.open(api.url)
  t.after(() => device.close())
  await device.auth('u', HASH)
  assert.deepEqual(device.messages().map((m) => m.data), [1, 3])
})

test('HTTP API: 503 with FST_ERR_COMET_UNAVAILABLE while the store is down', async (t) => {
  const redis = await startRedis()
  const { app, url } = await startApp({ redis: redis.url, api: { keys: [KEY] } })
  t.after(async () => {
    await app.close()
    await redis.stop()
  })
  const post = async (method: string, body: unknown): Promise<Response> => await fetch(`${url.replace(/^ws/, 'http')}/api/${method}`, {
    method: 'POST', headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json' }, body: JSON.stringify(body)
  })
  assert.equal((await post('sendToUser', { userId: 'u', event: 'e', data: 1 })).status, 200)
  await redis.stop()
  const down = await post('sendToUser', { userId: 'u', event: 'e', data: 1 })
  assert.equal(down.status, 503)
  assert.equal((await down.json() as any).error.code, 'FST_ERR_COMET_UNAVAILABLE')
  const batch = await (await post('batch', { commands: [{ method: 'isOnline', params: { userId: 'u' } }] })).json() as any
  assert.equal(batch.replies[0].error.code, 'FST_ERR_COMET_UNAVAILABLE')
})

test('HTTP API: off by default; api.keys are checked at register time', async (t) => {
  const { url } = await appOn(t, 'memory')
  const res = await fetch(`${url.replace(/^ws/, 'http')}/api/sendToUser`, { method: 'POST', headers: { authorization: `Bearer ${KEY}` } })
  assert.equal(res.status, 404)
  for (const api of [{}, { keys: [] }, { keys: ['short'] }, { keys: [KEY, 5] }, { keys: [KEY], bodyLimit: 10 }, { keys: [KEY], other: 1 }, 'on']) {
    const app = Fastify()
    await assert.rejects(async () => await app.register(comet, { api } as never).ready(), { code: 'FST_ERR_COMET_OPTIONS' }, JSON.stringify(api))
    await app.close()
  }
})

test('HTTP API: @fastify/swagger documents every route with its params', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(swagger, { openapi: { info: { title: 'app', version: '1' } } })
  await app.register(comet, { prefix: '/v1', path: '/rt', api: { keys: [KEY] } })
  await app.ready()
  const doc = app.swagger() as { paths: Record<string, any> }
  const methods = ['createAuth', 'registerAuth', 'revokeAuth', 'sendToUser', 'sendToUsers', 'publish', 'isOnline', 'presence', 'members', 'channelStats', 'channels', 'history', 'batch']
  assert.deepEqual(Object.keys(doc.paths).filter((p) => p.includes('/api/')).sort(), methods.map((m) => `/v1/rt/api/${m}`).sort(),
    'under Fastify\'s prefix and the path, like the socket; the catch-all for unknown methods is hidden')
  const send = doc.paths['/v1/rt/api/sendToUser'].post
  const body = send.requestBody.content['application/json'].schema
  assert.deepEqual(Object.keys(body.properties), ['userId', 'event', 'data', 'idempotencyKey'])
  assert.deepEqual(body.required, ['userId', 'event', 'data'])
  assert.ok(send.responses['200'] !== undefined)
})

test('HTTP API: the routes move with Fastify\'s prefix, next to the socket', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(comet, { prefix: '/v1', api: { keys: [KEY] } })
  const reply = await app.inject({ method: 'POST', url: '/v1/comet/api/isOnline', headers: { authorization: `Bearer ${KEY}` }, payload: { userId: 'u' } })
  assert.deepEqual([reply.statusCode, reply.json()], [200, { result: false }])
  assert.equal((await app.inject({ method: 'POST', url: '/comet/api/isOnline', headers: { authorization: `Bearer ${KEY}` }, payload: { userId: 'u' } })).statusCode, 404)
})
