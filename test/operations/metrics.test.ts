import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import { Counter, Registry } from 'prom-client'
import WebSocket from 'ws'
import comet from '../../lib/index.ts'
import type { CometOptions } from '../../lib/index.ts'
import { loadPromClient } from '../../lib/operations/prometheus.ts'
import { HASH, startApp } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'
import { eventually, TestClient } from '../helpers/client.ts'
import { startRedis } from '../helpers/redis.ts'
import { httpBase, sample } from './helpers.ts'

async function scrape (started: TestApp, path = '/comet/metrics'): Promise<string> {
  const res = await fetch(httpBase(started).replace(/\/comet$/, '') + path)
  assert.equal(res.status, 200)
  assert.match(res.headers.get('content-type') ?? '', /^text\/plain/)
  return await res.text()
}

const TRAFFIC: CometOptions = {
  metrics: true,
  authTimeout: 500,
  maxDevices: 1,
  offlineQueue: { maxMessages: 1 },
  authRateLimit: { max: 2, window: 60_000 }
}

for (const backend of ['memory', 'redis'] as const) {
  test(`every series moves with traffic (${backend})`, async (t) => {
    const redis = backend === 'redis' ? await startRedis() : null
    t.after(async () => await redis?.stop())
    const started = await startApp({ ...TRAFFIC, ...(redis === null ? {} : { redis: redis.url }) })
    t.after(async () => await started.app.close())
    const { app, url } = started
    const clients: TestClient[] = []
    t.after(async () => { for (const c of clients) await c.close() })
    const open = async (): Promise<TestClient> => {
      const client = await TestClient.open(url)
      clients.push(client)
      return client
    }
    const before = await scrape(started)
    for (const series of ['comet_messages_sent_total{kind="user"}', 'comet_auth_total{result="expired"}', 'comet_connections{state="ready"}', 'comet_users', 'comet_store_up']) {
      assert.match(before, new RegExp(`^${series.replace(/[{}]/g, '\\$&')} `, 'm'), `${series} is exposed before any traffic`)
    }
    assert.equal(sample(before, 'comet_store_up'), 1)

    await app.comet.registerAuth('u1', HASH)
    await app.comet.registerAuth('u2', HASH)
    const a = await open()
    await a.auth('u1', HASH)
    a.send({ type: 'subscribe', channel: 'news' })
    await a.type('subscribed')
    a.send({ type: 'ping' })
    await a.type('pong')
    await app.comet.sendToUser('u1', 'hello', 1)
    await app.comet.publish('news', 'headline', 2)
    await a.next((f) => f.type === 'message' && f.channel === 'news')
    await a.next((f) => f.type === 'message' && f.channel === 'msg')
    await app.comet.sendToUser('u2', 'while-away', 1)
    // A bulk send counts every user's message, and is timed as one call.
    await app.comet.sendToUsers(['u2', 'u3'], 'while-away', 2)

    const waiting = await open()
    let text = await scrape(started)
    assert.equal(sample(text, 'comet_connections{state="ready"}'), 1)
    assert.equal(sample(text, 'comet_connections{state="authenticating"}'), 1)
    assert.equal(sample(text, 'comet_users'), 1)
    assert.equal(sample(text, 'comet_subscriptions'), 1)
    assert.equal(sample(text, 'comet_messages_sent_total{kind="user"}'), 4)
    assert.equal(sample(text, 'comet_messages_sent_total{kind="channel"}'), 1)
    assert.equal(sample(text, 'comet_messages_delivered_total{kind="user"}'), 1)
    assert.equal(sample(text, 'comet_messages_delivered_total{kind="channel"}'), 1)
    assert.equal(sample(text, 'comet_messages_queued_total'), 3)
    assert.equal(sample(text, 'comet_client_frames_total{type="auth"}'), 1)
    assert.equal(sample(text, 'comet_client_frames_total{type="subscribe"}'), 1)
    assert.equal(sample(text, 'comet_client_frames_total{type="ping"}'), 1)
    assert.equal(sample(text, 'comet_send_duration_seconds_count{kind="user"}'), 3)
    assert.equal(sample(text, 'comet_send_duration_seconds_count{kind="channel"}'), 1)
    assert.equal(sample(text, 'comet_send_duration_seconds_bucket{kind="user",le="+Inf"}'), 3, 'buckets are cumulative')
    assert.ok(sample(text, 'comet_send_duration_seconds_bucket{kind="user",le="5"}') <= 3)
    assert.ok(sample(text, 'comet_send_duration_seconds_sum{kind="user"}') > 0)
    assert.match(text, /^# TYPE comet_store_duration_seconds histogram$/m)
    assert.ok(sample(text, 'comet_store_duration_seconds_count{op="getAuth"}') >= 1)
    assert.ok(sample(text, 'comet_store_duration_seconds_count{op="sendToUser"}') >= 2)
    assert.equal(sample(text, 'comet_store_duration_seconds_count{op="sendToUsers"}'), 1)
    assert.equal(sample(text, 'comet_store_errors_total'), 0)

    // The queue of u2 held one message of two: the drop is counted when u2 comes back.
    const b = await open()
    const ready = await b.auth('u2', HASH)
    assert.equal(ready['dropped'], 1)
    await b.type('message')
    // A second device of u1, over maxDevices 1.
    const c = await open()
    c.send({ type: 'auth', userId: 'u1', hash: HASH })
    assert.equal(await c.closed, 4429)
    assert.equal(await waiting.closed, 4408)
    for (const user of ['x1', 'x2']) {
      const bad = await open()
      bad.send({ type: 'auth', userId: user, hash: 'wrong-but-long-enough' })
      assert.equal(await bad.closed, 4401)
    }
    const refused = new WebSocket(url)
    refused.on('error', () => {})
    await new Promise((resolve) => refused.once('unexpected-response', resolve))
    await b.close()

    await eventually(async () => sample(await scrape(started), 'comet_users') === 1, 'u2 gone from the users gauge')
    text = await scrape(started)
    assert.equal(sample(text, 'comet_auth_total{result="ok"}'), 2)
    assert.equal(sample(text, 'comet_auth_total{result="device_limit"}'), 1)
    assert.equal(sample(text, 'comet_auth_total{result="timeout"}'), 1)
    assert.equal(sample(text, 'comet_auth_total{result="bad_credentials"}'), 2)
    assert.equal(sample(text, 'comet_auth_total{result="rate_limited"}'), 1)
    assert.equal(sample(text, 'comet_queue_dropped_total'), 1)
    assert.equal(sample(text, 'comet_messages_delivered_total{kind="user"}'), 2)
    assert.equal(sample(text, 'comet_disconnects_total{code="4429"}'), 1)
    assert.equal(sample(text, 'comet_disconnects_total{code="4408"}'), 1)
    assert.equal(sample(text, 'comet_disconnects_total{code="4401"}'), 2)
    assert.equal(sample(text, 'comet_disconnects_total{code="1005"}'), 1, 'the client closed without a code')
    assert.equal(sample(text, 'comet_connections{state="ready"}'), 1)
    assert.equal(sample(text, 'comet_connections{state="authenticating"}'), 0)
    assert.doesNotMatch(text, /u1|u2|x1|news/, 'no user id or channel name in a label')
  })
}

test('our series join the app\'s registry, and the app serves them', async (t) => {
  const registry = new Registry()
  const own = new Counter({ name: 'app_requests_total', help: 'the app\'s own', registers: [registry] })
  own.inc(5)
  const app = Fastify()
  t.after(async () => await app.close())
  await app.register(comet, { metrics: { registry, prefix: 'push_' } })
  app.get('/metrics', async (_request, reply) => await reply.type(registry.contentType).send(await registry.metrics()))
  await app.comet.registerAuth('u1', HASH)
  await app.comet.sendToUser('u1', 'hi', 1)
  const text = (await app.inject('/metrics')).body
  assert.equal(sample(text, 'app_requests_total'), 5)
  assert.equal(sample(text, 'push_messages_sent_total{kind="user"}'), 1)
  assert.equal(sample(text, 'push_messages_queued_total'), 1)
  assert.equal((await app.inject('/comet/metrics')).statusCode, 404, 'the app serves its registry itself')

  // A second registration on the same registry needs a prefix of its own.
  const other = Fastify()
  t.after(async () => await other.close())
  await assert.rejects(async () => await other.register(comet, { metrics: { registry, prefix: 'push_' } }).ready(), { code: 'FST_ERR_COMET_OPTIONS', message: /push_connections/ })
  // Closing takes our series out of the app's registry, the app's own stay.
  await app.close()
  const after = await registry.metrics()
  assert.equal(sample(after, 'app_requests_total'), 5)
  assert.doesNotMatch(after, /push_/)
})

test('metrics: endpoint false serves nothing; off by default', async (t) => {
  for (const options of [{ metrics: { endpoint: false } }, {}] as CometOptions[]) {
    const app = Fastify()
    t.after(async () => await app.close())
    await app.register(comet, options)
    assert.equal((await app.inject('/comet/metrics')).statusCode, 404)
  }
})

test('metrics options are checked', async () => {
  for (const [metrics, message] of [
    ['yes', /metrics must be true/],
    [{ prefix: 'bad-prefix' }, /metrics.prefix/],
    [{ registry: {} }, /metrics.registry/],
    [{ endpoint: 'no' }, /metrics.endpoint must be a boolean/],
    [{ registy: null }, /unknown option "metrics.registy"/]
  ] as const) {
    const app = Fastify()
    await assert.rejects(async () => await app.register(comet, { metrics } as unknown as CometOptions).ready(), { code: 'FST_ERR_COMET_OPTIONS', message })
    await app.close()
  }
})

test('without prom-client, metrics fail at register with how to fix it', async () => {
  await assert.rejects(loadPromClient('prom-client-not-installed'), { code: 'FST_ERR_COMET_OPTIONS', message: /npm install prom-client/ })
  assert.equal(typeof (await loadPromClient()).Registry, 'function')
})
