// Webhooks (docs/events.md): signed JSON batches, sent by one instance (of two on a Redis or a Cluster), retried in order after a non-2xx
// answer or a timeout, each event answered 2xx once; and verifyWebhook for receivers.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import { setTimeout as sleep } from 'node:timers/promises'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import Fastify from 'fastify'
import comet, { verifyWebhook } from '../lib/index.ts'
import type { ServerEvent, CometOptions } from '../lib/index.ts'
import { startApp, HASH } from './helpers/app.ts'
import type { TestApp } from './helpers/app.ts'
import { eventually } from './helpers/client.ts'
import { member } from './helpers/channels.ts'
import { startRedis } from './helpers/redis.ts'
import { sample } from './operations/helpers.ts'
import { chosen, dropPrefix, sharedCluster, testPrefix } from './helpers/backends.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const SECRET = 'a-webhook-secret-for-tests'
const HEARTBEAT = 200
const OPTIONS: CometOptions = { heartbeatInterval: HEARTBEAT, presenceGrace: 200, authRateLimit: false, offlineQueue: { maxMessages: 1 } }

interface Received {
  status: number
  verified: boolean
  timestamp: number
  events: ServerEvent[]
}

type Answer = 'ok' | 'fail' | 'hang'

/** A real Fastify receiver on loopback; `answer(n)` decides the n-th request's fate (0-based). */
async function receiver (t: TestContext, answer: (n: number) => Answer = () => 'ok'): Promise<{ url: string, requests: Received[], delivered: () => ServerEvent[] }> {
  const app = Fastify()
  const requests: Received[] = []
  const hanging = new AbortController()
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => { done(null, body) })
  app.post('/hook', async (request, reply) => {
    const raw = request.body as string
    const fate = answer(requests.length)
    const status = fate === 'ok' ? 204 : fate === 'fail' ? 500 : 0
    requests.push({
      status,
      verified: verifyWebhook(raw, request.headers, SECRET),
      timestamp: Number(request.headers['x-comet-timestamp']),
      events: (JSON.parse(raw) as { events: ServerEvent[] }).events
    })
    if (fate === 'hang') await sleep(8000, undefined, { signal: hanging.signal }).catch(() => {})
    return await reply.code(status === 0 ? 204 : status).send()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => {
    hanging.abort()
    await app.close()
  })
  const { port } = app.server.address() as { port: number }
  return {
    url: `http://127.0.0.1:${port}/hook`,
    requests,
    delivered: () => requests.filter((r) => r.status >= 200 && r.status < 300).flatMap((r) => r.events)
  }
}

/** One app on memory, or two sharing a fresh Redis or a prefix of their own on the file's Cluster. */
async function instances (t: TestContext, kind: 'memory' | 'redis' | 'cluster', options: CometOptions): Promise<TestApp[]> {
  if (kind === 'memory') {
    const one = await startApp(options)
    t.after(() => one.app.close())
    return [one]
  }
  const redis = kind === 'redis' ? await startRedis() : null
  const cluster = kind === 'cluster' ? await sharedCluster() : null
  const keyPrefix = testPrefix()
  const shared: CometOptions = { ...options, ...(cluster === null ? { redis: redis!.url } : { redis: { cluster: cluster.startup }, keyPrefix }) }
  const a = await startApp(shared)
  const b = await startApp(shared)
  t.after(async () => {
    await Promise.all([a.app.close(), b.app.close()])
    await redis?.stop()
    if (cluster !== null) dropPrefix(cluster, keyPrefix)
  })
  // Time for one of them to take the webhook's lease.
  await sleep(3 * HEARTBEAT)
  return [a, b]
}

test('verifyWebhook accepts the signature of the secret over "<timestamp>.<body>", and refuses a wrong one or an old timestamp', () => {
  const body = '{"events":[]}'
  const now = Math.floor(Date.now() / 1000)
  const sign = (ts: number, text = body, secret = SECRET): Record<string, string> => ({
    'x-comet-timestamp': String(ts),
    'x-comet-signature': 'sha256=' + createHmac('sha256', secret).update(`${ts}.${text}`).digest('hex')
  })
  assert.equal(verifyWebhook(body, sign(now), SECRET), true)
  assert.equal(verifyWebhook(Buffer.from(body), sign(now), SECRET), true, 'a Buffer body')
  assert.equal(verifyWebhook(body, new Headers(sign(now)), SECRET), true, 'fetch Headers')
  assert.equal(verifyWebhook(body, { 'X-Comet-Timestamp': String(now), 'X-Comet-Signature': sign(now)['x-comet-signature'] }, SECRET), true, 'any header case')
  assert.equal(verifyWebhook(body, sign(now, body, 'another-secret-of-length'), SECRET), false, 'another secret')
  assert.equal(verifyWebhook(body + ' ', sign(now), SECRET), false, 'a changed body')
  assert.equal(verifyWebhook(body, { ...sign(now), 'x-comet-signature': 'sha256=00' }, SECRET), false, 'a short signature')
  assert.equal(verifyWebhook(body, { ...sign(now), 'x-comet-timestamp': String(now - 1) }, SECRET), false, 'the signature of another time')
  // Beyond 300 s by more than the second that may pass while this runs.
  assert.equal(verifyWebhook(body, sign(now - 302), SECRET), false, 'older than the default tolerance (300 s)')
  assert.equal(verifyWebhook(body, sign(now + 302), SECRET), false, 'too far in the future')
  assert.equal(verifyWebhook(body, sign(now - 290), SECRET), true)
  assert.equal(verifyWebhook(body, sign(now - 60), SECRET, { tolerance: 30 }), false, 'a tighter tolerance')
  assert.equal(verifyWebhook(body, {}, SECRET), false, 'no headers')
  assert.equal(verifyWebhook(body, { ...sign(now), 'x-comet-timestamp': 'soon' }, SECRET), false, 'a timestamp that is not a number')
  assert.equal(verifyWebhook(body, sign(now), ''), false, 'no secret')
})

test('memory: events are POSTed signed, in batches of at most 100, each once, in order, only the types asked for', async (t) => {
  const hook = await receiver(t)
  const { app, url } = await startApp({ ...OPTIONS, webhooks: [{ url: hook.url, secret: SECRET, types: ['dropped', 'online'] }] })
  t.after(() => app.close())
  await app.comet.registerAuth('ann', HASH)
  const device = await member(url, 'ann', ['track_room'])
  await device.close()
  for (let n = 0; n < 151; n++) await app.comet.sendToUser(`u${n % 3}`, 'e', n)
  await eventually(() => hook.delivered().length === 149, 'every drop and the online', 5000)
  await sleep(1000)
  assert.ok(hook.requests.every((r) => r.verified), 'every request verifies')
  assert.ok(hook.requests.every((r) => r.events.length <= 100))
  assert.ok(hook.requests.length >= 2)
  const events = hook.delivered()
  assert.equal(events.length, 149, 'nothing more arrived (offline, join, leave, occupied, vacated are not asked for)')
  assert.deepEqual(new Set(events.map((e) => e.type)), new Set(['online', 'dropped']))
  assert.equal(new Set(events.map((e) => e.id)).size, events.length, 'each once')
  const drops = events.filter((e) => e.type === 'dropped').map((e) => (e as { userId: string }).userId)
  assert.deepEqual(drops, Array.from({ length: 148 }, (_, n) => `u${(n + 3) % 3}`), 'in the order they happened')
})

for (const backend of ['memory', ...chosen(['redis', 'cluster'] as const)] as const) {
  for (const kind of ['a 500', 'a timeout'] as const) {
    test(`${backend}: after ${kind} the batch is sent again, order kept; once answered 2xx each event arrives once`, async (t) => {
      const hook = await receiver(t, (n) => n === 0 ? (kind === 'a 500' ? 'fail' : 'hang') : 'ok')
      if (kind === 'a timeout') {
        // Garbage collections while the request hangs: a timeout signal they can drop never fires
        // (nodejs/node#55428), and the hung batch would count as answered when the receiver finally is.
        const collecting = setInterval(gc, 100)
        t.after(() => { clearInterval(collecting) })
      }
      const [{ app }] = await instances(t, backend, { ...OPTIONS, webhooks: [{ url: hook.url, secret: SECRET }] }) as [TestApp]
      await app.comet.sendToUser('u1', 'e', 1)
      await app.comet.sendToUser('u1', 'e', 2)
      await eventually(() => hook.requests.length === 1, 'the first request', 3000)
      for (const user of ['u2', 'u3', 'u4']) {
        await app.comet.sendToUser(user, 'e', 1)
        await app.comet.sendToUser(user, 'e', 2)
      }
      // A timeout costs the request's 5 s and at most 1 s of backoff.
      await eventually(() => hook.delivered().length === 4, 'every drop, after the retry', kind === 'a 500' ? 5000 : 10_000)
      await sleep(1500)
      const [failed, retried] = hook.requests
      assert.equal(hook.requests.length, 3, 'the failed request, its retry, then the rest')
      assert.deepEqual(retried!.events, failed!.events, 'the same batch, the same ids')
      assert.ok(retried!.verified)
      assert.deepEqual(hook.delivered().map((e) => (e as { userId: string }).userId), ['u1', 'u2', 'u3', 'u4'])
      assert.equal(new Set(hook.delivered().map((e) => e.id)).size, 4)
    })
  }
}

test('memory: a batch failing for longer than retryFor is given up, logged and counted (comet_webhook_given_up_total), and the next one goes out', async (t) => {
  const hook = await receiver(t, (n) => n < 2 ? 'fail' : 'ok')
  const lines: string[] = []
  const app = Fastify({ logger: { level: 'warn', stream: { write: (line: string) => { lines.push(line) } } } })
  await app.register(comet, { ...OPTIONS, metrics: true, webhooks: [{ url: `${hook.url}?token=hidden`, secret: SECRET, retryFor: 1500 }] })
  await app.ready()
  t.after(() => app.close())
  await app.comet.sendToUser('u1', 'e', 1)
  await app.comet.sendToUser('u1', 'e', 2)
  await eventually(() => lines.some((l) => l.includes('given up')), 'given up', 8000)
  const given = JSON.parse(lines.find((l) => l.includes('given up'))!) as Record<string, unknown>
  assert.equal(given['failedSinceStart'], 1)
  assert.equal(given['level'], 50)
  const givenUp = async (): Promise<number> => sample((await app.inject('/comet/metrics')).body, 'comet_webhook_given_up_total')
  assert.equal(await givenUp(), 1, 'the one event of the batch')
  assert.ok(!lines.join('').includes('hidden'), 'no query string (a token) in the logs')
  assert.ok(!lines.join('').includes(SECRET), 'no secret in the logs')
  await app.comet.sendToUser('u2', 'e', 1)
  await app.comet.sendToUser('u2', 'e', 2)
  await eventually(() => hook.delivered().length === 1, 'the next batch', 5000)
  assert.equal((hook.delivered()[0] as { userId: string }).userId, 'u2')
  assert.equal(await givenUp(), 1, 'a delivered batch is not counted')
})

for (const kind of chosen(['redis', 'cluster'] as const)) {
  test(`${kind}: two instances with the same webhook: one sends each batch, each event arrives once`, async (t) => {
    const hook = await receiver(t)
    const [a, b] = await instances(t, kind, { ...OPTIONS, webhooks: [{ url: hook.url, secret: SECRET, types: ['online', 'offline', 'dropped'] }] }) as [TestApp, TestApp]
    await a.app.comet.registerAuth('ann', HASH)
    const phone = await member(a.url, 'ann', ['track_room'])
    const laptop = await member(b.url, 'ann')
    await phone.close()
    await laptop.close()
    for (let n = 0; n < 10; n++) await (n % 2 === 0 ? a : b).app.comet.sendToUser(`u${n % 5}`, 'e', n)
    await eventually(() => hook.delivered().length === 7, 'online, offline, 5 drops', 5000)
    await sleep(1500)
    const events = hook.delivered()
    assert.equal(events.length, 7)
    assert.equal(new Set(events.map((e) => e.id)).size, 7, 'each once')
    assert.ok(hook.requests.every((r) => r.verified && r.status === 204))
    assert.deepEqual(events.filter((e) => e.type !== 'dropped').map((e) => e.type), ['online', 'offline'])
  })
}

test('memory: closing the app while a webhook request hangs aborts the request at once, and nothing is retried', async (t) => {
  // A receiver that never answers, and notes when the sender gives up on the connection.
  const requests: Array<{ closed: boolean }> = []
  const server = createServer((req) => {
    const request = { closed: false }
    requests.push(request)
    req.socket.once('close', () => { request.closed = true })
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => { server.closeAllConnections(); server.close() })
  const { port } = server.address() as { port: number }
  const { app } = await startApp({ ...OPTIONS, webhooks: [{ url: `http://127.0.0.1:${port}/hook`, secret: SECRET }] })
  await app.comet.sendToUser('u1', 'e', 1)
  await app.comet.sendToUser('u1', 'e', 2)
  await eventually(() => requests.length === 1, 'the request', 3000)
  await app.close()
  // Well before the request's own 5 s timeout could end it.
  await eventually(() => requests[0]!.closed, 'the sender closed the connection', 2000)
  await sleep(500)
  assert.equal(requests.length, 1, 'no retry after close')
})

test('the webhooks option is checked at register time', async () => {
  for (const webhooks of [{}, [{ url: 'ftp://x', secret: SECRET }], [{ url: 'http://x', secret: 'short' }], [{ url: 'http://x', secret: SECRET, types: ['nope'] }],
    [{ url: 'http://x', secret: SECRET, types: [] }], [{ url: 'http://x', secret: SECRET, retryFor: -1 }], [{ url: 'http://x', secret: SECRET, extra: 1 }], [null]]) {
    const app = Fastify()
    await assert.rejects(async () => { await app.register(comet, { webhooks } as unknown as CometOptions).ready() }, { code: 'FST_ERR_COMET_OPTIONS' }, JSON.stringify(webhooks))
    await app.close()
  }
})

test('the example receiver (examples/webhooks) takes signed events once and refuses a forged request', async (t) => {
  const { buildReceiver } = await import('../examples/webhooks/receiver.js')
  const handled: ServerEvent[] = []
  const hook = await buildReceiver({ secret: SECRET, handle: (event) => { handled.push(event) } })
  await hook.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => hook.close())
  const { port } = hook.server.address() as { port: number }
  const { app, url } = await startApp({ ...OPTIONS, webhooks: [{ url: `http://127.0.0.1:${port}/comet`, secret: SECRET, types: ['online'] }] })
  t.after(() => app.close())
  await app.comet.registerAuth('kim', HASH)
  const device = await member(url, 'kim')
  await eventually(() => handled.length === 1, 'the online reaches the receiver')
  assert.deepEqual([handled[0]!.type, (handled[0] as { userId: string }).userId], ['online', 'kim'])
  await device.close()

  const body = JSON.stringify({ events: [{ ...handled[0], id: 'forged' }] })
  const forged = await fetch(`http://127.0.0.1:${port}/comet`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-comet-timestamp': String(Math.floor(Date.now() / 1000)), 'x-comet-signature': 'sha256=' + '0'.repeat(64) },
    body
  })
  assert.equal(forged.status, 401)
  assert.equal(handled.length, 1)
})
