import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import type { Readable } from 'node:stream'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { createInterface } from 'node:readline'
import { setTimeout as sleep } from 'node:timers/promises'
import { startApp, HASH } from './helpers/app.ts'
import { eventually } from './helpers/client.ts'
import { events, member, request } from './helpers/channels.ts'
import { PAIR_BACKENDS, startPair } from './helpers/pair.ts'
import { startRedis } from './helpers/redis.ts'
import type { RedisServer } from './helpers/redis.ts'

const GRACE = 300

const HEARTBEAT = 200

async function spawnInstance (redisUrl: string): Promise<{ child: ChildProcess, url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./fixtures/instance.ts', import.meta.url).pathname], {
    env: { ...process.env, REDIS_URL: redisUrl, HEARTBEAT: String(HEARTBEAT) },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const [line] = await once(createInterface({ input: child.stdout as Readable }), 'line') as [string]
  const { port } = JSON.parse(line) as { port: number }
  return { child, url: `ws://127.0.0.1:${port}/comet` }
}

test('a SIGKILLed instance\'s track_ members leave, and its users go offline, within 3 heartbeats, once', async (t) => {
  const redis = await startRedis()
  const a = await startApp({ redis: redis.url, heartbeatInterval: HEARTBEAT })
  const b = await startApp({ redis: redis.url, heartbeatInterval: HEARTBEAT })
  const { child, url } = await spawnInstance(redis.url)
  t.after(async () => {
    child.kill('SIGKILL')
    await Promise.all([a.app.close(), b.app.close()])
    await redis.stop()
  })
  for (const u of ['ann', 'ben', 'victim']) await a.app.comet.registerAuth(u, HASH)
  const onA = await member(a.url, 'ann', ['track_room', 'user_status_victim'])
  const onB = await member(b.url, 'ben', ['track_room', 'user_status_victim'])
  t.after(() => Promise.all([onA.close(), onB.close()]))
  const victim = await member(url, 'victim', ['track_room'])
  for (const c of [onA, onB]) {
    await c.next((f) => f.type === 'join' && f.userId === 'victim')
    await c.next((f) => f.type === 'online')
  }
  await sleep(HEARTBEAT * 2)
  const killed = Date.now()
  child.kill('SIGKILL')
  await once(child, 'exit')
  victim.ws.terminate()
  for (const c of [onA, onB]) {
    await c.next((f) => f.type === 'leave' && f.userId === 'victim', 3000)
    await c.next((f) => f.type === 'offline', 3000)
  }
  const took = Date.now() - killed
  t.diagnostic(`members of the killed instance left ${took} ms after the kill`)
  assert.ok(took <= 3 * HEARTBEAT + 100, `left ${took} ms after the kill (3 heartbeats: ${3 * HEARTBEAT} ms)`)
  await sleep(HEARTBEAT * 2)
  for (const c of [onA, onB]) {
    assert.equal(events(c, 'leave', 'track_room').length, 1, 'one leave although two instances sweep')
    assert.equal(events(c, 'offline', 'user_status_victim').length, 1)
  }
  assert.deepEqual((await a.app.comet.members('track_room')).sort(), ['ann', 'ben'])
  assert.deepEqual(await b.app.comet.channelStats('track_room'), { subscribers: 2, users: 2 })
})

test('user_status_ keeps no key of its own: a user with a device and no watcher has only auth, devices, log and meta', async (t) => {
  const { a, b, redis } = await startPair(t, { presenceGrace: GRACE, heartbeatInterval: HEARTBEAT })
  await a.app.comet.registerAuth('dan', HASH)
  const dan = await member(a.url, 'dan')
  const phone = await member(b.url, 'dan')
  t.after(() => Promise.all([dan.close(), phone.close()]))
  await sleep(2 * HEARTBEAT)
  const admin = new Redis((redis as RedisServer).url)
  t.after(() => admin.disconnect())
  assert.deepEqual((await admin.keys('*dan*')).sort(), ['comet:{u:dan}:auth', 'comet:{u:dan}:devices', 'comet:{u:dan}:log', 'comet:{u:dan}:meta'])
  assert.deepEqual(await a.app.comet.members('user_status_dan'), ['dan'])
})

for (const backend of PAIR_BACKENDS) {
  describe(`channels across two instances on ${backend}`, () => {
    test('a web_ message published on A reaches subscribers on A and B once, stamped; only the sending connection gets no copy', async (t) => {
      const { a, b } = await startPair(t, { publishBurst: 20 }, backend)
      await a.app.comet.registerAuth('alice', HASH)
      const sender = await member(a.url, 'alice', ['web_chat'])
      const otherTab = await member(b.url, 'alice', ['web_chat'])
      const onA = await member(a.url, null, ['web_chat'])
      const onB = await member(b.url, null, ['web_chat'])
      t.after(() => Promise.all([sender, otherTab, onA, onB].map((c) => c.close())))
      const ids: string[] = []
      for (let i = 0; i < 20; i++) ids.push((await request(sender, { type: 'publish', channel: 'web_chat', event: 'say', data: i })).id)
      for (const c of [otherTab, onA, onB]) {
        await eventually(() => c.messages('web_chat').length >= 20, 'all 20')
      }
      await sleep(100)
      for (const c of [otherTab, onA, onB]) {
        assert.deepEqual(c.messages('web_chat').map((m) => m.id), ids, 'once each, in order')
        assert.ok(c.messages('web_chat').every((m) => m.userId === 'alice'))
      }
      assert.equal(sender.messages('web_chat').length, 0)
    })

    test('track_ across instances: one member per user whatever the instance, one join, one leave, after the grace period', async (t) => {
      const { a, b } = await startPair(t, { presenceGrace: GRACE }, backend)
      for (const u of ['ann', 'ben']) await a.app.comet.registerAuth(u, HASH)
      const annA = await member(a.url, 'ann', ['track_room'])
      const watchB = await member(b.url, 'ann', ['track_room'])
      t.after(() => Promise.all([annA.close(), watchB.close()]))
      const benA = await member(a.url, 'ben', ['track_room'])
      const benB = await member(b.url, 'ben', ['track_room'])
      for (const c of [annA, watchB]) await c.next((f) => f.type === 'join' && f.userId === 'ben')
      for (const app of [a.app, b.app]) {
        assert.deepEqual((await app.comet.members('track_room')).sort(), ['ann', 'ben'])
        assert.deepEqual(await app.comet.channelStats('track_room'), { subscribers: 4, users: 2 })
      }
      assert.deepEqual((await request(watchB, { type: 'members', channel: 'track_room' })).members.sort(), ['ann', 'ben'])

      await benB.close()
      await sleep(GRACE + 200)
      await benA.close()
      for (const c of [annA, watchB]) await c.next((f) => f.type === 'leave')
      await sleep(200)
      for (const c of [annA, watchB]) {
        assert.deepEqual(events(c, 'join', 'track_room').filter((f) => f.userId === 'ben').length, 1)
        assert.deepEqual(events(c, 'leave', 'track_room'), [{ type: 'leave', channel: 'track_room', userId: 'ben' }], 'exactly one leave')
      }
      assert.deepEqual(await b.app.comet.members('track_room'), ['ann'])
    })

    test('a reload that moves a user from A to B within the grace period flaps neither track_ nor user_status_', async (t) => {
      const { a, b } = await startPair(t, { presenceGrace: GRACE }, backend)
      for (const u of ['ann', 'ben']) await a.app.comet.registerAuth(u, HASH)
      const ann = await member(a.url, 'ann', ['track_room', 'user_status_ben'])
      const ben = await member(a.url, 'ben', ['track_room'])
      await ann.next((f) => f.type === 'join' && f.userId === 'ben')
      await ann.next((f) => f.type === 'online')
      await ben.close()
      const again = await member(b.url, 'ben', ['track_room'])
      t.after(() => Promise.all([ann.close(), again.close()]))
      await sleep(GRACE + 300)
      assert.equal(events(ann, 'leave', 'track_room').length, 0)
      assert.equal(events(ann, 'offline', 'user_status_ben').length, 0)
      assert.equal(events(ann, 'join', 'track_room').filter((f) => f.userId === 'ben').length, 1)
      assert.equal(events(ann, 'online', 'user_status_ben').length, 1)
      await again.close()
      await ann.next((f) => f.type === 'leave')
      await ann.next((f) => f.type === 'offline')
    })

    test('user_status_ across instances: watchers on B see a user whose devices are on A and B', async (t) => {
      const { a, b } = await startPair(t, { presenceGrace: GRACE }, backend)
      await a.app.comet.registerAuth('dan', HASH)
      const watcher = await member(b.url, null, ['user_status_dan'])
      t.after(() => watcher.close())
      const d1 = await member(a.url, 'dan')
      const d2 = await member(b.url, 'dan')
      await watcher.next((f) => f.type === 'online')
      assert.deepEqual(await b.app.comet.members('user_status_dan'), ['dan'])
      await d1.close()
      await sleep(GRACE + 200)
      assert.equal(events(watcher, 'offline', 'user_status_dan').length, 0)
      await d2.close()
      await watcher.next((f) => f.type === 'offline')
      await sleep(100)
      assert.equal(events(watcher, 'online', 'user_status_dan').length, 1)
      assert.equal(events(watcher, 'offline', 'user_status_dan').length, 1)
    })

    test('offline follows the grace period even when the instance that started it shuts down: the watchers\' instance sweeps', async (t) => {
      const { a, b } = await startPair(t, { presenceGrace: GRACE, heartbeatInterval: HEARTBEAT }, backend)
      await a.app.comet.registerAuth('dan', HASH)
      const watcher = await member(b.url, null, ['user_status_dan'])
      t.after(() => watcher.close())
      const dan = await member(a.url, 'dan')
      await watcher.next((f) => f.type === 'online')
      await dan.close()
      // A's grace timer goes with it; B sweeps the user it has a watcher of every heartbeat.
      await a.app.close()
      await watcher.next((f) => f.type === 'offline', GRACE + 3 * HEARTBEAT)
      await sleep(HEARTBEAT)
      assert.equal(events(watcher, 'offline', 'user_status_dan').length, 1)
      assert.deepEqual(await b.app.comet.members('user_status_dan'), [])
    })

    test('history is shared: published on A, replayed from B; client publishes on B are kept too', async (t) => {
      const { a, b } = await startPair(t, { history: { 'web_*': { size: 50 } } }, backend)
      const reader = await member(b.url, null)
      const writer = await member(b.url, null)
      t.after(() => Promise.all([reader.close(), writer.close()]))
      const first = await a.app.comet.publish('web_room', 'e', 0)
      const later: string[] = []
      for (let i = 1; i <= 5; i++) later.push((await a.app.comet.publish('web_room', 'e', i)).id)
      later.push((await request(writer, { type: 'publish', channel: 'web_room', event: 'say', data: 6 })).id)
      const replay = await request(reader, { type: 'history', channel: 'web_room', since: first.id })
      assert.equal(replay.recovered, true)
      assert.deepEqual(replay.messages.map((m: { id: string }) => m.id), later)
      assert.deepEqual(replay.messages.map((m: { data: number }) => m.data), [1, 2, 3, 4, 5, 6])
      assert.equal(replay.messages[5].userId, null)
    })

    test('channelStats and channels() sum subscribers and users across instances', async (t) => {
      const { a, b } = await startPair(t, {}, backend)
      for (const u of ['gus', 'hal']) await a.app.comet.registerAuth(u, HASH)
      const clients = await Promise.all([
        member(a.url, 'gus', ['lobby']), member(b.url, 'gus', ['lobby']), member(b.url, 'hal', ['lobby', 'web_x']), member(a.url, null, ['lobby'])
      ])
      t.after(() => Promise.all(clients.map((c) => c.close())))
      for (const app of [a.app, b.app]) {
        assert.deepEqual(await app.comet.channelStats('lobby'), { subscribers: 4, users: 2 })
        assert.deepEqual(await app.comet.channels(), [{ channel: 'lobby', subscribers: 4, users: 2 }, { channel: 'web_x', subscribers: 1, users: 1 }])
      }
    })

    test('track_ under churn on two instances: every observer sees join and leave strictly alternating, the same everywhere', async (t) => {
      const { a, b } = await startPair(t, { presenceGrace: 0 }, backend)
      const users = ['u0', 'u1', 'u2', 'u3']
      for (const u of [...users, 'obsA', 'obsB']) await a.app.comet.registerAuth(u, HASH)
      const obsA = await member(a.url, 'obsA', ['track_churn'])
      const obsB = await member(b.url, 'obsB', ['track_churn'])
      t.after(() => Promise.all([obsA.close(), obsB.close()]))
      await Promise.all(users.map(async (u, i) => {
        for (let round = 0; round < 8; round++) {
          // Two tabs at once, on both instances, closed in either order.
          const tabs = await Promise.all([member(a.url, u, ['track_churn']), member(b.url, u, ['track_churn'])])
          await sleep((i + round) % 3 * 5)
          if (round % 2 === 0) tabs.reverse()
          for (const tab of tabs) await tab.close()
        }
      }))
      await eventually(async () => (await a.app.comet.members('track_churn')).length === 2, 'only the observers remain')
      await sleep(200)
      const sequence = (c: typeof obsA, u: string): string[] => c.frames.filter((f) => (f.type === 'join' || f.type === 'leave') && f.userId === u).map((f) => f.type)
      for (const u of users) {
        const seen = sequence(obsA, u)
        assert.ok(seen.length >= 2, `${u}: at least one join and one leave`)
        seen.forEach((type, i) => assert.equal(type, i % 2 === 0 ? 'join' : 'leave', `${u}: ${seen.join(',')}`))
        assert.deepEqual(sequence(obsB, u), seen, `${u}: both instances saw the same`)
      }
      assert.deepEqual((await b.app.comet.members('track_churn')).sort(), ['obsA', 'obsB'])
    })
  })
}
