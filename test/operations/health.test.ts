import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import comet from '../../lib/index.ts'
import { startApp } from '../helpers/app.ts'
import { TestClient } from '../helpers/client.ts'
import { startRedis } from '../helpers/redis.ts'
import { httpBase, sample } from './helpers.ts'

test('health: 200 while Redis answers, 503 once it is killed, 200 when it is back', async (t) => {
  let redis = await startRedis()
  t.after(async () => await redis.stop())
  const started = await startApp({ redis: redis.url, health: true, metrics: true, heartbeatInterval: 500 })
  t.after(async () => await started.app.close())
  const base = httpBase(started)
  const client = await TestClient.open(started.url)
  t.after(async () => await client.close())

  let res = await fetch(`${base}/health`)
  assert.equal(res.status, 200)
  assert.deepEqual(await res.json(), { status: 'ok', store: 'redis', connections: 1 })
  assert.deepEqual(await started.app.comet.health(), { status: 'ok', store: 'redis', connections: 1 })

  await redis.stop()
  const asked = Date.now()
  res = await fetch(`${base}/health`)
  assert.ok(Date.now() - asked < 3000, 'the check answers within its 1 s bound (and some slack)')
  assert.equal(res.status, 503)
  const down = await res.json() as Record<string, unknown>
  assert.equal(down['status'], 'unavailable')
  assert.equal(down['store'], 'redis')
  assert.equal(down['connections'], 1)
  assert.equal(typeof down['error'], 'string')
  assert.equal((await started.app.comet.health()).status, 'unavailable')
  let text = await (await fetch(`${base}/metrics`)).text()
  assert.equal(sample(text, 'comet_store_up'), 0)
  await assert.rejects(started.app.comet.sendToUser('u1', 'e', 1), { code: 'FST_ERR_COMET_UNAVAILABLE' })
  text = await (await fetch(`${base}/metrics`)).text()
  assert.ok(sample(text, 'comet_store_errors_total') >= 1)

  redis = await startRedis(redis.port)
  const deadline = Date.now() + 20_000
  for (;;) {
    res = await fetch(`${base}/health`)
    if (res.status === 200) break
    assert.ok(Date.now() < deadline, 'healthy again within 20 s of Redis coming back')
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  assert.deepEqual(await res.json(), { status: 'ok', store: 'redis', connections: 1 })
  assert.equal(sample(await (await fetch(`${base}/metrics`)).text(), 'comet_store_up'), 1)
})

test('health: the memory store is always up; off by default', async (t) => {
  const app = Fastify()
  t.after(async () => await app.close())
  await app.register(comet, { health: true, path: '/push' })
  const res = await app.inject('/push/health')
  assert.equal(res.statusCode, 200)
  assert.deepEqual(res.json(), { status: 'ok', store: 'memory', connections: 0 })
  assert.deepEqual(await app.comet.health(), { status: 'ok', store: 'memory', connections: 0 })

  // The routes move with Fastify's prefix register option, as the socket does.
  const prefixed = Fastify()
  t.after(async () => await prefixed.close())
  await prefixed.register(comet, { prefix: '/rt', health: true, metrics: true, admin: { authorize: () => false } })
  assert.equal((await prefixed.inject('/rt/comet/health')).statusCode, 200)
  assert.equal((await prefixed.inject('/rt/comet/metrics')).statusCode, 200)
  assert.equal((await prefixed.inject('/rt/comet/admin')).statusCode, 401)
  assert.equal((await prefixed.inject('/comet/health')).statusCode, 404)

  const plain = Fastify()
  t.after(async () => await plain.close())
  await plain.register(comet)
  assert.equal((await plain.inject('/comet/health')).statusCode, 404)
  assert.equal((await plain.comet.health()).status, 'ok')
  await assert.rejects(async () => await Fastify().register(comet, { health: 'yes' as unknown as boolean }).ready(), { code: 'FST_ERR_COMET_OPTIONS' })
})
