import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { PAIR_BACKENDS, startPair } from './helpers/pair.ts'
import { commandCalls } from './helpers/redis.ts'

test('only instances that hold a device of the user receive its messages, one script call per send', async (t) => {
  // No heartbeat (its pub/sub probes publish too) inside the counted window.
  const { a, b, redis } = await startPair(t, { heartbeatInterval: 600_000 })
  assert.ok(redis !== null)
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  await a.app.comet.registerAuth('r', HASH)
  const onB = await TestClient.open(b.url)
  t.after(() => onB.close())
  await onB.auth('r', HASH)
  const [, subscribers] = await admin.pubsub('NUMSUB', 'comet:{u:r}') as [string, number]
  assert.equal(subscribers, 1, 'only B listens for the user')
  const [, nobody] = await admin.pubsub('NUMSUB', 'comet:{u:other}') as [string, number]
  assert.equal(nobody, 0)

  await a.app.comet.sendToUser('r', 'warm', 0)
  await admin.config('RESETSTAT')
  for (let i = 0; i < 20; i++) await a.app.comet.sendToUser('r', 'e', i)
  const calls = await commandCalls(admin)
  assert.equal(calls('evalsha') + calls('eval'), 20, 'one script per sendToUser')
  assert.equal(calls('publish'), 20, 'one publish, inside the script')
  await eventually(() => onB.messages().length === 21, 'B got them all')
})

test('the sends of one event-loop turn share a script call; each still gets its own answer, and fails alone', async (t) => {
  // No heartbeat slice (its presence scripts) inside the counted window.
  const { a, b, redis } = await startPair(t, { heartbeatInterval: 600_000 })
  assert.ok(redis !== null)
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  const users = Array.from({ length: 100 }, (_, i) => `x${i}`)
  for (const user of users) await a.app.comet.registerAuth(user, HASH)
  const onB = await TestClient.open(b.url)
  t.after(() => onB.close())
  await onB.auth('x0', HASH)
  const warm = await a.app.comet.sendToUser('x0', 'warm', 0)
  // A key of the wrong type makes that user's send fail inside the script.
  await admin.set('comet:{u:x7}:meta', 'not a hash')
  await admin.config('RESETSTAT')

  const results = await Promise.allSettled(users.map(async (user, i) => await a.app.comet.sendToUser(user, 'e', i)))
  const calls = await commandCalls(admin)
  assert.equal(calls('evalsha') + calls('eval'), 2, '100 sends in one turn: two scripts of at most 64 sends')
  assert.equal(calls('publish'), 99, 'one publish per send that did not fail')

  const failed = results[7]!
  assert.equal(failed.status, 'rejected')
  assert.equal((failed.reason as { code: string }).code, 'FST_ERR_COMET_UNAVAILABLE')
  assert.match((failed.reason as Error).message, /WRONGTYPE/)
  for (const [i, result] of results.entries()) {
    if (i === 7) continue
    assert.equal(result.status, 'fulfilled', `send to x${i}`)
    assert.equal(result.value.queued, i !== 0, 'x0 has a device; the others are offline and queued')
  }
  const first = results[0] as PromiseFulfilledResult<{ id: string }>
  assert.ok(BigInt(first.value.id) > BigInt(warm.id))
  await eventually(() => onB.messages().length === 2, 'x0 got its message')
  assert.deepEqual(onB.messages().map((m) => m.id), [warm.id, first.value.id])
  const queued = await admin.zcard('comet:{u:x42}:queue')
  assert.equal(queued, 1, 'an offline user has its message queued')
})

test('the auth frames of one burst read their digests with one MGET; a wrong hash still fails alone', async (t) => {
  const { a, redis } = await startPair(t, { heartbeatInterval: 600_000 })
  assert.ok(redis !== null)
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  const users = Array.from({ length: 20 }, (_, i) => `m${i}`)
  for (const user of users) await a.app.comet.registerAuth(user, HASH)
  const clients = await Promise.all(users.map(async () => await TestClient.open(a.url)))
  t.after(() => Promise.all(clients.map((c) => c.close())))
  await admin.config('RESETSTAT')
  // Every client's auth frame is on the wire before the server reads any, so they land in few turns.
  for (const [i, c] of clients.entries()) c.send({ type: 'auth', userId: users[i], hash: i === 3 ? 'a-wrong-hash-of-enough-length' : HASH })
  const outcomes = await Promise.all(clients.map(async (c) => await Promise.race([c.type('ready').then(() => 'ready'), c.closed.then((code) => code)])))
  assert.deepEqual(outcomes, users.map((_, i) => i === 3 ? 4401 : 'ready'))
  const calls = await commandCalls(admin)
  const reads = calls('mget')
  assert.ok(reads >= 1 && reads < users.length / 2, `${reads} MGETs for ${users.length} auth frames`)
})

for (const backend of PAIR_BACKENDS) {
  describe(`two instances on ${backend}`, () => {
    test('a message to a user with devices on A and B arrives once on every device, in send order', async (t) => {
      const { a, b } = await startPair(t, {}, backend)
      await a.app.comet.registerAuth('u', HASH)
      const onA = await TestClient.open(a.url)
      const onB = await TestClient.open(b.url)
      t.after(() => Promise.all([onA.close(), onB.close()]))
      await onA.auth('u', HASH)
      await onB.auth('u', HASH)
      const ids: string[] = []
      for (let i = 0; i < 100; i++) ids.push((await a.app.comet.sendToUser('u', 'n', i)).id)
      for (const device of [onA, onB]) {
        await eventually(() => device.messages().length >= 100, 'all messages')
        await sleep(50)
        assert.deepEqual(device.messages().map((m) => m.id), ids)
      }
    })

    test('the offline queue is shared: sent on A, delivered on B', async (t) => {
      const { a, b } = await startPair(t, {}, backend)
      await b.app.comet.registerAuth('off', HASH)
      const sent = await a.app.comet.sendToUser('off', 'e', 'waiting')
      assert.equal(sent.queued, true)
      const client = await TestClient.open(b.url)
      t.after(() => client.close())
      assert.equal((await client.auth('off', HASH)).queued, 1)
      assert.equal((await client.type('message')).id, sent.id)
    })

    test('revoking on A closes the user\'s sockets on B, and re-registering works everywhere', async (t) => {
      const { a, b } = await startPair(t, {}, backend)
      await a.app.comet.registerAuth('rv', HASH)
      const onB = await TestClient.open(b.url)
      await onB.auth('rv', HASH)
      await a.app.comet.revokeAuth('rv')
      assert.equal(await onB.closed, 4401)
      await eventually(async () => !(await a.app.comet.isOnline('rv')), 'revoked user offline')
      await a.app.comet.registerAuth('rv', 'a-brand-new-secret-hash')
      const again = await TestClient.open(b.url)
      t.after(() => again.close())
      await again.auth('rv', 'a-brand-new-secret-hash')
    })

    test('presence and maxDevices count devices across instances', async (t) => {
      const { a, b } = await startPair(t, { maxDevices: 2 }, backend)
      await a.app.comet.registerAuth('pr', HASH)
      const onA = await TestClient.open(a.url)
      const onB = await TestClient.open(b.url)
      t.after(() => Promise.all([onA.close(), onB.close()]))
      await onA.auth('pr', HASH)
      await onB.auth('pr', HASH)
      assert.deepEqual({ ...(await a.app.comet.presence('pr')), lastSeen: null }, { online: true, devices: 2, lastSeen: null })
      assert.equal((await b.app.comet.presence('pr')).devices, 2)
      const third = await TestClient.open(a.url)
      third.send({ type: 'auth', userId: 'pr', hash: HASH })
      assert.equal(await third.closed, 4429)
    })

    test('evict-oldest closes the oldest device even on the other instance', async (t) => {
      const { a, b } = await startPair(t, { maxDevices: 1, onDeviceLimit: 'evict-oldest' }, backend)
      await a.app.comet.registerAuth('ev', HASH)
      const onA = await TestClient.open(a.url)
      await onA.auth('ev', HASH)
      const onB = await TestClient.open(b.url)
      t.after(() => onB.close())
      await onB.auth('ev', HASH)
      assert.equal(await onA.closed, 4409)
    })

    test('channel messages reach subscribers on every instance', async (t) => {
      const { a, b } = await startPair(t, {}, backend)
      const onA = await TestClient.open(a.url)
      const onB = await TestClient.open(b.url)
      t.after(() => Promise.all([onA.close(), onB.close()]))
      for (const c of [onA, onB]) {
        c.send({ type: 'auth' })
        c.send({ type: 'subscribe', channel: 'news' })
        await c.type('subscribed')
      }
      const { id } = await b.app.comet.publish('news', 'e', { x: 1 })
      for (const c of [onA, onB]) assert.equal((await c.type('message')).id, id)
    })

    test('no loss and no duplicate while the device reconnects on A and B during a stream of sends', async (t) => {
      // A queue that holds every send: an overflow (reported as `dropped`) is not what this test is about.
      const { a, b } = await startPair(t, { offlineQueue: { maxMessages: 1000, ttl: 60_000 } }, backend)
      await a.app.comet.registerAuth('race', HASH)
      let dropped = 0
      const received = new Map<string, number>()
      const sent: string[] = []
      const stream = { sending: true }
      let connections = 0

      // The device: connects to A or B in turn, stays a few ms, leaves cleanly; again and again.
      const churn = (async () => {
        while (stream.sending) {
          const client = await TestClient.open((connections++ % 2 === 0 ? a : b).url)
          dropped += Number((await client.auth('race', HASH))['dropped'])
          await sleep(Math.floor(Math.random() * 15))
          await client.close()
          let last = 0
          for (const m of client.messages()) {
            assert.ok(Number(m.id) > last, 'ids increase on one connection')
            last = Number(m.id)
            received.set(m.id, (received.get(m.id) ?? 0) + 1)
          }
        }
      })()
      for (let i = 0; i < 400; i++) {
        sent.push((await a.app.comet.sendToUser('race', 'n', i)).id)
        if (i % 4 === 0) await sleep(1)
      }
      stream.sending = false
      await churn
      // Whatever is left waits in the queue for the next connection.
      const last = await TestClient.open(b.url)
      const ready = await last.auth('race', HASH)
      dropped += Number(ready['dropped'])
      await eventually(() => last.messages().length >= ready.queued, 'queued remainder')
      await sleep(100)
      await last.close()
      for (const m of last.messages()) received.set(m.id, (received.get(m.id) ?? 0) + 1)

      assert.ok(connections >= 10, `the device reconnected ${connections} times`)
      assert.equal(dropped, 0, 'the queue never overflowed')
      const missing = sent.filter((id) => !received.has(id))
      const duplicated = [...received].filter(([, n]) => n > 1)
      assert.deepEqual(missing, [], 'no message lost')
      assert.deepEqual(duplicated, [], 'no message delivered twice')
      assert.equal(received.size, sent.length)
    })
  })
}
