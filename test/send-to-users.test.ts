import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { CometEmitter } from '../lib/emitter/index.ts'
import { HASH } from './helpers/app.ts'
import { appOn, BACKENDS, sharedCluster, testPrefix } from './helpers/backends.ts'
import { TestClient } from './helpers/client.ts'
import type { Frame } from './helpers/client.ts'
import { startPair, PAIR_BACKENDS } from './helpers/pair.ts'
import { slotOf } from './helpers/cluster.ts'
import { commandCalls, startRedis } from './helpers/redis.ts'
import { startApp } from './helpers/app.ts'
import type { TestApp } from './helpers/app.ts'

async function redisApp (t: { after (fn: () => unknown): void }): Promise<TestApp & { redis: string }> {
  const redis = await startRedis()
  const started = await startApp({ redis: redis.url, heartbeatInterval: 600_000 })
  t.after(async () => {
    await started.app.close()
    await redis.stop()
  })
  return { ...started, redis: redis.url }
}

async function device (t: { after (fn: () => unknown): void }, url: string, userId: string): Promise<TestClient> {
  const client = await TestClient.open(url)
  t.after(() => client.close())
  await client.auth(userId, HASH)
  return client
}

const messages = (client: TestClient): Frame[] => client.messages()

for (const backend of BACKENDS) {
  test(`sendToUsers (${backend}): online users get it on every device, offline users get it queued, each decided alone`, async (t) => {
    const { app, url } = await appOn(t, backend)
    const ids = Array.from({ length: 40 }, (_, i) => `u${i}`)
    await Promise.all(ids.map((id) => app.comet.registerAuth(id, HASH)))
    // Even users online with two devices, odd ones offline.
    const devices = new Map<string, TestClient[]>()
    for (const id of ids.filter((_, i) => i % 2 === 0)) devices.set(id, [await device(t, url, id), await device(t, url, id)])

    const results = await app.comet.sendToUsers(ids, 'note', { n: 1 })
    assert.deepEqual(results.map((r) => r.userId), ids, 'one result per user, in the order asked')
    for (const r of results) assert.equal(r.queued, !devices.has(r.userId), r.userId)
    for (const [id, clients] of devices) {
      const id0 = results.find((r) => r.userId === id)!.id
      for (const client of clients) {
        const m = await client.type('message')
        assert.deepEqual([m.id, m.event, m.data], [id0, 'note', { n: 1 }])
      }
    }
    // The same ids and queue as sendToUser: an offline user gets it on connect, and ids keep increasing.
    const offline = await device(t, url, 'u1')
    assert.deepEqual(messages(offline).map((m) => m.id), [results[1]!.id])
    const next = await app.comet.sendToUser('u0', 'note', 2)
    assert.ok(BigInt(next.id) > BigInt(results[0]!.id))
    // Nothing was written twice.
    await devices.get('u0')![0]!.next((f) => f.type === 'message' && f.id === next.id)
    for (const clients of devices.values()) for (const client of clients) assert.equal(messages(client).filter((m) => m.data?.n === 1).length, 1)
  })
}

test('sendToUsers: a user id listed twice gets the message once, one result in its first place', async (t) => {
  const { app, url } = await appOn(t, 'memory')
  await app.comet.registerAuth('a', HASH)
  const a = await device(t, url, 'a')
  const results = await app.comet.sendToUsers(['a', 'b', 7, 'a', '7'], 'note', 1)
  assert.deepEqual(results.map((r) => [r.userId, r.queued]), [['a', false], ['b', true], ['7', true]])
  await a.type('message')
  await app.comet.sendToUser('a', 'after', 2)
  await a.next((f) => f.type === 'message' && f.event === 'after')
  assert.equal(messages(a).filter((m) => m.event === 'note').length, 1)
})

test('sendToUsers: bad lists and bad ids are coded errors; an empty list sends nothing', async (t) => {
  const { app } = await appOn(t, 'memory', { maxPayload: 1024 })
  const c = app.comet
  await assert.rejects(c.sendToUsers('u' as unknown as string[], 'e', 1), { code: 'FST_ERR_COMET_USER_IDS' })
  await assert.rejects(c.sendToUsers(Array.from({ length: 10_001 }, (_, i) => i), 'e', 1), (err: Error & { code: string }) => {
    assert.equal(err.code, 'FST_ERR_COMET_USER_IDS')
    assert.match(err.message, /10001 ids, over 10000/)
    return true
  })
  await assert.rejects(c.sendToUsers(['ok', 'a b'], 'e', 1), { code: 'FST_ERR_COMET_USER_ID' })
  await assert.rejects(c.sendToUsers(['ok'], 'bad.event', 1), { code: 'FST_ERR_COMET_EVENT' })
  await assert.rejects(c.sendToUsers(['ok'], 'e', 'x'.repeat(1024)), { code: 'FST_ERR_COMET_PAYLOAD_TOO_LARGE' })
  assert.deepEqual(await c.sendToUsers([], 'e', 1), [])
  // A rejected list sent nothing, to anyone.
  assert.equal((await c.sendToUser('ok', 'e', 1)).queued, true)
  assert.deepEqual((await c.presence('ok')).devices, 0)
  const all = await c.sendToUsers(Array.from({ length: 10_000 }, (_, i) => i), 'e', 1)
  assert.equal(all.length, 10_000)
})

for (const backend of PAIR_BACKENDS) {
  test(`sendToUsers (${backend}): two instances, users on either, and the emitter runs the same code`, async (t) => {
    const prefix = testPrefix()
    const { a, b, redis } = await startPair(t, { keyPrefix: prefix }, backend)
    const ids = Array.from({ length: 30 }, (_, i) => `v${i}`)
    await Promise.all(ids.map((id) => a.app.comet.registerAuth(id, HASH)))
    const online = new Map<string, TestClient>()
    for (const [i, id] of ids.entries()) if (i % 3 !== 2) online.set(id, await device(t, i % 3 === 0 ? a.url : b.url, id))
    const results = await a.app.comet.sendToUsers(ids, 'note', 'hi')
    for (const r of results) assert.equal(r.queued, !online.has(r.userId), r.userId)
    for (const [id, client] of online) assert.equal((await client.type('message')).id, results.find((r) => r.userId === id)!.id)

    const cluster = backend === 'cluster' ? await sharedCluster() : null
    const emitter = new CometEmitter({ redis: cluster === null ? redis!.url : { cluster: cluster.startup }, keyPrefix: prefix })
    t.after(() => emitter.close())
    const viaEmitter = await emitter.sendToUsers(['v0', 'v1'], 'again', 2)
    assert.deepEqual(viaEmitter.map((r) => [r.userId, r.queued]), [['v0', false], ['v1', false]])
    assert.equal((await online.get('v1')!.next((f) => f.type === 'message' && f.event === 'again')).id, viaEmitter[1]!.id)
  })
}

test('sendToUsers over the HTTP API: the same results and errors', async (t) => {
  const key = 'k'.repeat(32)
  const { app, url } = await appOn(t, 'memory', { api: { keys: [key] } })
  await app.comet.registerAuth('h1', HASH)
  const online = await device(t, url, 'h1')
  const call = async (body: unknown): Promise<{ status: number, body: any }> => {
    const res = await fetch(`${url.replace(/^ws/, 'http')}/api/sendToUsers`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${key}` }, body: JSON.stringify(body)
    })
    return { status: res.status, body: await res.json() }
  }
  const sent = await call({ userIds: ['h1', 2], event: 'note', data: { x: 1 } })
  assert.equal(sent.status, 200)
  assert.deepEqual(sent.body.result.map((r: any) => [r.userId, r.queued]), [['h1', false], ['2', true]])
  assert.equal((await online.type('message')).id, sent.body.result[0].id)
  assert.deepEqual(await call({ userIds: 'h1', event: 'note', data: 1 }), { status: 400, body: { error: { code: 'FST_ERR_COMET_USER_IDS', message: 'Invalid user id list: expected an array, got "h1"' } } })
})

test('sendToUsers on Redis: one script call per 64 users, the frame sent once per call; two lists in one turn keep their own data', async (t) => {
  // No heartbeat (its scripts and probes) inside the counted window.
  const { app, url, redis } = await redisApp(t)
  const admin = new Redis(redis)
  t.after(() => admin.disconnect())
  const ids = Array.from({ length: 200 }, (_, i) => `w${i}`)
  await app.comet.sendToUsers(['warm'], 'warm', 0)
  await admin.config('RESETSTAT')
  const data = 'd'.repeat(2000)
  await app.comet.sendToUsers(ids, 'note', data)
  const calls = await commandCalls(admin)
  assert.equal(calls('evalsha') + calls('eval'), 4, '200 users: four script calls of at most 64')
  assert.equal(calls('publish'), 200)
  const bytes = Number(/total_net_input_bytes:(\d+)/.exec(await admin.info('stats'))![1])
  assert.ok(bytes < 4 * 2 * data.length + 200 * 400, `the frame travelled once per script call (${bytes} bytes in)`)

  await Promise.all(['x1', 'x2'].map((id) => app.comet.registerAuth(id, HASH)))
  const x1 = await device(t, url, 'x1')
  const x2 = await device(t, url, 'x2')
  const [first, second] = await Promise.all([app.comet.sendToUsers(['x1', 'x2'], 'one', 1), app.comet.sendToUsers(['x2', 'x1'], 'two', 2)])
  for (const [client, i] of [[x1, 0], [x2, 1]] as const) {
    const got = await Promise.all([client.next((f) => f.event === 'one'), client.next((f) => f.event === 'two')])
    assert.deepEqual(got.map((m) => [m.id, m.data]), [[first[i]!.id, 1], [second[1 - i]!.id, 2]])
  }
})

test('sendToUsers on a Redis Cluster: one script call per slot', async (t) => {
  const cluster = await sharedCluster()
  const { app } = await appOn(t, 'cluster', { heartbeatInterval: 600_000 })
  const ids = Array.from({ length: 40 }, (_, i) => `c${i}`)
  await app.comet.sendToUsers(ids, 'warm', 0)
  const masters = cluster.masters().map((m) => m.port)
  for (const port of masters) cluster.cli(port, 'CONFIG', 'RESETSTAT')
  await app.comet.sendToUsers(ids, 'note', 1)
  const scripts = masters.reduce((n, port) => {
    const stats = cluster.cli(port, 'INFO', 'commandstats')
    return n + ['evalsha', 'eval'].reduce((m, c) => m + Number(new RegExp(`cmdstat_${c}:calls=(\\d+)`).exec(stats)?.[1] ?? 0), 0)
  }, 0)
  assert.equal(scripts, new Set(ids.map((id) => slotOf(`{u:${id}}`))).size)
})
