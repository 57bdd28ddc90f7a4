import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { startApp, HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { DeafeningProxy } from './helpers/proxy.ts'
import { startRedis } from './helpers/redis.ts'

const HEARTBEAT = 200

test('while Redis is down the API rejects quickly with UNAVAILABLE, sockets stay open, and everything recovers when it returns', async (t) => {
  let redis = await startRedis()
  const { app, url } = await startApp({ redis: redis.url, heartbeatInterval: HEARTBEAT })
  t.after(async () => {
    await app.close()
    await redis.stop()
  })
  await app.comet.registerAuth('r', HASH)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  await client.auth('r', HASH)

  await redis.stop()
  for (const call of [() => app.comet.sendToUser('r', 'e', 'lost'), () => app.comet.publish('news', 'e', 1), () => app.comet.presence('r')]) {
    const started = Date.now()
    await assert.rejects(call(), { code: 'FST_ERR_COMET_UNAVAILABLE' })
    assert.ok(Date.now() - started < 7000, 'bounded by connect/command timeouts, never a hang')
  }
  await sleep(3 * HEARTBEAT)
  assert.equal(client.closeCode, null, 'connected sockets stay open')

  redis = await startRedis(redis.port)
  // Redis came back empty (no persistence): the hash is gone, but the open socket keeps working.
  let sent: { id: string } | undefined
  await eventually(async () => {
    sent = await app.comet.sendToUser('r', 'e', 'after').catch(() => undefined)
    return sent !== undefined
  }, 'sendToUser works again', 10_000)
  await eventually(() => client.messages().some((m) => m.id === sent?.id), 'the open socket receives again', 5000)
  await eventually(async () => await app.comet.isOnline('r'), 'presence is back after a heartbeat', 5000)
  await sleep(100)
  assert.equal(client.messages().filter((m) => m.data === 'after').length, 1, 'exactly once')
  assert.equal(client.messages().filter((m) => m.data === 'lost').length, 0, 'a rejected send was not delivered')
  assert.equal(client.closeCode, null)
})

test('a subscriber that silently stops receiving is detected by the self-ping, reconnected, and its sockets catch up', async (t) => {
  const redis = await startRedis()
  const proxy = new DeafeningProxy(redis.port)
  await proxy.listen()
  const { app, url } = await startApp({ redis: `redis://127.0.0.1:${proxy.port}`, heartbeatInterval: HEARTBEAT })
  t.after(async () => {
    await app.close()
    await proxy.close()
    await redis.stop()
  })
  await app.comet.registerAuth('deaf', HASH)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  await client.auth('deaf', HASH)
  await app.comet.sendToUser('deaf', 'e', 'before')
  await client.type('message')

  assert.equal(proxy.deafenSubscribers(), 1)
  const during = await app.comet.sendToUser('deaf', 'e', 'during')
  assert.equal(during.queued, false, 'Redis believes it was delivered')
  await sleep(50)
  assert.equal(client.messages().length, 1, 'and it was not: the subscriber is deaf')

  await eventually(() => client.messages().some((m) => m.id === during.id), 'caught up after the subscriber reconnected', 5 * HEARTBEAT + 3000)
  const after = await app.comet.sendToUser('deaf', 'e', 'after')
  await eventually(() => client.messages().some((m) => m.id === after.id), 'live delivery again')
  assert.deepEqual(client.messages().map((m) => m.data), ['before', 'during', 'after'])
  assert.equal(client.closeCode, null, 'the socket stayed open throughout')
})
