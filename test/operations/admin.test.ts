import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import comet from '../../lib/index.ts'
import type { AdminOptions, CometOptions } from '../../lib/index.ts'
import { HASH, startApp } from '../helpers/app.ts'
import { eventually, TestClient } from '../helpers/client.ts'
import { spawnInstance } from '../helpers/instance.ts'
import { startRedis } from '../helpers/redis.ts'
import { httpBase } from './helpers.ts'

async function appWith (t: { after: (fn: () => Promise<void>) => void }, options: CometOptions): Promise<FastifyInstance> {
  const app = Fastify()
  t.after(async () => await app.close())
  await app.register(comet, options)
  await app.ready()
  return app
}

const TOKEN = 'Bearer admin-token'
const byToken: AdminOptions['authorize'] = async (request) => request.headers.authorization === TOKEN

test('admin: off by default; authorize is required', async (t) => {
  const app = await appWith(t, {})
  assert.equal((await app.inject('/comet/admin')).statusCode, 404)
  assert.equal((await app.inject('/comet/admin/api/overview')).statusCode, 404)
  for (const admin of [{}, true, { authorize: 'yes' }]) {
    await assert.rejects(async () => await Fastify().register(comet, { admin } as unknown as CometOptions).ready(), { code: 'FST_ERR_COMET_OPTIONS', message: /authorize/ })
  }
})

test('admin: 401 without credentials, 403 with refused ones, the status authorize throws, 200 when it says yes', async (t) => {
  const app = await appWith(t, { admin: { authorize: byToken } })
  for (const url of ['/comet/admin', '/comet/admin/admin.js', '/comet/admin/admin.css', '/comet/admin/api/overview', '/comet/admin/api/channels', '/comet/admin/api/users/u1']) {
    assert.equal((await app.inject(url)).statusCode, 401, url)
    assert.equal((await app.inject({ url, headers: { authorization: 'Bearer wrong' } })).statusCode, 403, url)
    assert.equal((await app.inject({ url, headers: { cookie: 'session=someone-else' } })).statusCode, 403, url)
    assert.equal((await app.inject({ url, headers: { authorization: TOKEN } })).statusCode, 200, url)
  }
  for (const url of ['/comet/admin/api/users/u1/revoke', '/comet/admin/api/users/u1/send']) {
    assert.equal((await app.inject({ method: 'POST', url, payload: {} })).statusCode, 401, url)
    assert.equal((await app.inject({ method: 'POST', url, payload: {}, headers: { authorization: 'Bearer wrong' } })).statusCode, 403, url)
  }
  const page = await app.inject({ url: '/comet/admin', headers: { authorization: TOKEN } })
  assert.match(page.headers['content-type'] as string, /^text\/html/)
  assert.match(page.headers['content-security-policy'] as string, /default-src 'none'/)
  assert.match(page.body, /<script type="module" src="admin\/admin.js">/)
  assert.doesNotMatch(page.body, /https?:\/\//, 'nothing from a CDN')

  let thrown = 0
  const throwing = await appWith(t, {
    path: '/push',
    admin: {
      authorize: async (_request, reply) => {
        thrown++
        reply.header('www-authenticate', 'Basic realm="comet"')
        throw Object.assign(new Error('log in first'), { statusCode: 401 })
      }
    }
  })
  const res = await throwing.inject('/push/admin')
  assert.equal(res.statusCode, 401)
  assert.equal(res.headers['www-authenticate'], 'Basic realm="comet"')
  assert.equal(res.json().error, 'log in first')
  assert.equal(thrown, 1)
  const failing = await appWith(t, { admin: { authorize: () => { throw new Error('database down') } } })
  assert.equal((await failing.inject('/comet/admin')).statusCode, 500)
})

test('admin API: lookup, send, revoke; channels; failed authentications (memory)', async (t) => {
  const started = await startApp({ admin: { authorize: byToken } })
  t.after(async () => await started.app.close())
  const { app, url } = started
  const base = `${httpBase(started)}/admin/api`
  const get = async (path: string): Promise<any> => {
    const res = await fetch(`${base}/${path}`, { headers: { authorization: TOKEN } })
    assert.equal(res.status, 200, path)
    return await res.json()
  }
  const post = async (path: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> =>
    await fetch(`${base}/${path}`, { method: 'POST', headers: { authorization: TOKEN, 'content-type': 'application/json', ...headers }, body: JSON.stringify(body) })

  await app.comet.registerAuth('alice', HASH)
  const a = await TestClient.open(url)
  t.after(async () => await a.close())
  await a.auth('alice', HASH)
  for (const channel of ['news', 'sport', 'news-eu']) {
    a.send({ type: 'subscribe', channel })
    await a.type('subscribed')
  }
  const bad = await TestClient.open(url)
  bad.send({ type: 'auth', userId: 'mallory', hash: 'a-wrong-hash-that-is-long' })
  assert.equal(await bad.closed, 4401)

  const overview = await get('overview')
  assert.equal(overview.instances.length, 1)
  assert.equal(overview.instances[0].id, overview.self)
  assert.equal(overview.instances[0].connections, 1)
  assert.equal(overview.instances[0].users, 1)
  assert.deepEqual(overview.totals.connections, 1)
  assert.equal(overview.chart.points.length, 91, '15 minutes of 10 s samples, then now')
  assert.equal(overview.failedAuths.length, 1)
  assert.equal(overview.failedAuths[0].reason, 'bad_credentials')
  assert.equal(overview.failedAuths[0].userId, 'mallory')
  assert.equal(typeof overview.failedAuths[0].address, 'string')
  assert.doesNotMatch(JSON.stringify(overview), /a-wrong-hash|a-long-enough/, 'never a secret')

  assert.deepEqual((await get('channels?search=news')).channels.map((c: { channel: string }) => c.channel).sort(), ['news', 'news-eu'])
  assert.equal((await get('channels')).matched, 3)

  let user = await get('users/alice')
  assert.equal(user.online, true)
  assert.equal(user.devices, 1)
  assert.deepEqual(user.instances, [{ id: overview.self, devices: 1 }])
  assert.equal(user.queued, 0)

  const sent = await post('users/alice/send', { event: 'admin_test', data: { text: 'hi' } })
  assert.equal(sent.status, 200)
  const message = await a.type('message')
  assert.deepEqual([message['event'], message['data']], ['admin_test', { text: 'hi' }])

  assert.equal((await post('users/alice/revoke', {}, { origin: 'https://evil.example' })).status, 403, 'a cross-site post is refused')
  const plain = await fetch(`${base}/users/alice/revoke`, { method: 'POST', headers: { authorization: TOKEN, 'content-type': 'text/plain' }, body: '{}' })
  assert.equal(plain.status, 415, 'a form post is refused')
  assert.equal(a.closeCode, null)
  assert.equal((await post('users/alice/revoke', {})).status, 200)
  assert.equal(await a.closed, 4401)
  await eventually(async () => (await get('users/alice')).online === false, 'alice offline', 5000)
  user = await get('users/alice')
  assert.equal(user.devices, 0)
  assert.notEqual(user.lastSeen, null)
  await app.comet.sendToUser('alice', 'later', 1)
  assert.equal((await get('users/alice')).queued, 1)

  const invalid = await fetch(`${base}/users/${encodeURIComponent('not valid!')}`, { headers: { authorization: TOKEN } })
  assert.equal(invalid.status, 400)
})

test('admin API on Redis: every live instance reports; a killed one lapses after 3 heartbeats', async (t) => {
  const redis = await startRedis()
  t.after(async () => await redis.stop())
  const heartbeat = 300
  const started = await startApp({ redis: redis.url, heartbeatInterval: heartbeat, admin: { authorize: () => true } })
  t.after(async () => await started.app.close())
  const other = await spawnInstance(redis.url, heartbeat, 0, { ADMIN: '1' })
  t.after(() => { other.child.kill('SIGKILL') })
  const b = await TestClient.open(other.url)
  t.after(async () => await b.close())
  await started.app.comet.registerAuth('bob', HASH)
  await b.auth('bob', HASH)
  const overview = async (): Promise<any> => await (await fetch(`${httpBase(started)}/admin/api/overview`)).json()
  await eventually(async () => (await overview()).instances.some((i: { connections: number }) => i.connections === 1), 'the other instance reports its socket', 5000)
  const both = await overview()
  assert.equal(both.instances.length, 2)
  assert.equal(both.totals.instances, 2)
  assert.equal(both.totals.connections, 1)
  const reported = both.instances.find((i: { id: string }) => i.id !== both.self)
  assert.equal(reported.address, `127.0.0.1:${other.port}`)
  assert.ok(reported.uptime >= 0)
  const user = await (await fetch(`${httpBase(started)}/admin/api/users/bob`)).json() as { instances: Array<{ id: string }> }
  assert.deepEqual(user.instances.map((i) => i.id), [reported.id], 'bob\'s device is on the other instance')

  other.child.kill('SIGKILL')
  const killed = Date.now()
  await eventually(async () => (await overview()).instances.length === 1, 'the killed instance lapses', 10_000)
  assert.ok(Date.now() - killed <= 3 * heartbeat + 2000, `lapsed after ${Date.now() - killed} ms`)
})
