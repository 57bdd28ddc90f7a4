import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { commandCalls } from './helpers/redis.ts'
import { redisStore, STORE_SETTINGS } from './helpers/store.ts'

test('subscriptions asked in one turn share a command, in order: an unsubscribe never overtakes its channel\'s subscribe', async (t) => {
  const { store, admin } = await redisStore(t)
  const listeners = async (userId: string): Promise<number> => ((await admin.pubsub('NUMSUB', `comet:{u:${userId}}`)) as [string, number])[1]

  await admin.config('RESETSTAT')
  const users = Array.from({ length: 20 }, (_, i) => `s${i}`)
  await Promise.all(users.map(async (user) => await store.listenUser(user)))
  assert.equal((await commandCalls(admin))('subscribe'), 1, '20 users asked in one turn: one SUBSCRIBE')
  for (const user of users) assert.equal(await listeners(user), 1)

  // Both orders within one turn: what was asked last holds.
  await Promise.all([store.listenUser('x'), store.unlistenUser('x'), store.unlistenUser('s0'), store.listenUser('s0')])
  assert.equal(await listeners('x'), 0, 'subscribed then unsubscribed')
  assert.equal(await listeners('s0'), 1, 'unsubscribed then subscribed again')
})

test('the heartbeat refreshes a slice a few users per script; a failing user does not stop the rest', async (t) => {
  const { store, admin } = await redisStore(t)

  const devices = new Map<string, string[]>()
  for (let i = 0; i < 40; i++) {
    const user = `r${i}`
    const device = `${Date.now()}.i.${i}`
    await store.setAuth(user, 'd', undefined)
    assert.equal((await store.attach(user, device, { digest: 'd' }, null)).ok, true)
    devices.set(user, [device])
  }
  // One user's devices key holds a string: its refresh fails (WRONGTYPE), as a script can.
  await admin.set('comet:{u:r5}:devices', 'not a sorted set')
  const before = Date.now()
  await admin.config('RESETSTAT')
  await assert.rejects(store.refresh(devices), /WRONGTYPE/)

  const calls = await commandCalls(admin)
  assert.equal(calls('evalsha') + calls('eval'), 3, '40 users: scripts of 16, 16 and 8 (the first one loads the script)')
  for (const [user, [device]] of devices) {
    if (user === 'r5') continue
    const lapse = Number(await admin.zscore(`comet:{u:${user}}:devices`, device!))
    assert.ok(lapse >= before + STORE_SETTINGS.presenceTtl, `${user} refreshed`)
  }
})

test('a thousandth message to a user in one ms takes the next ms: ids stay ms * 1000 + n, increasing, and resumable', async (t) => {
  const { store, admin } = await redisStore(t)
  await store.setAuth('burst', 'd', undefined)
  assert.equal((await store.attach('burst', `${Date.now()}.i.0`, { digest: 'd' }, null)).ok, true)
  // The log's last id is 998 into a ms a minute ahead: Redis numbers the next entries 999, 1000, ...
  const ms = Date.now() + 60_000
  await admin.xadd('comet:{u:burst}:log', `${ms}-998`, 'h', '')
  const ids: string[] = []
  for (let i = 0; i < 3; i++) ids.push((await store.sendToUser('burst', `{"n":${i},"id":"`)).id)
  assert.deepEqual(ids, [`${ms}999`, `${ms + 1}000`, `${ms + 1}001`])
  assert.deepEqual((await admin.xrange('comet:{u:burst}:log', '-', '+')).map(([id]) => id), [`${ms}-998`, `${ms}-999`, `${ms + 1}-0`, `${ms + 1}-1`])
  const { recovered, missed } = await store.catchUp('burst', Number(ids[0]))
  assert.equal(recovered, true)
  assert.deepEqual(missed.map((m) => [m.id, m.frame.toString()]), [1, 2].map((i) => [Number(ids[i]), `{"n":${i},"id":"${ids[i]}${STORE_SETTINGS.messageTail}`]))
})

test('the log lives while a device is connected; once it expired a device that resumes is told it may have missed something', async (t) => {
  // The log lives resume.ttl + 4/3 presenceTtl = 400 ms after its last heartbeat or message (lua/lib/log.lua).
  const settings = { ...STORE_SETTINGS, resume: { size: 100, ttl: 200 }, presenceTtl: 150 }
  const { store } = await redisStore(t, settings)
  await store.setAuth('quiet', 'd', undefined)
  const attach = async (since: string | null): Promise<{ recovered: boolean | null, synced: number }> => {
    const result = await store.attach('quiet', `${Date.now()}.i.${String(since)}`, { digest: 'd' }, since === null ? null : Number(since))
    assert.ok(result.ok)
    return result
  }
  const first = await attach(null)
  for (let i = 0; i < 12; i++) {
    await sleep(50)
    await store.refresh(new Map([['quiet', [`${Date.now()}.i.heartbeat`]]]))
  }
  assert.equal((await attach(String(first.synced))).recovered, true, 'heartbeats kept the log: nothing was sent, and we know it')
  const { id } = await store.sendToUser('quiet', '{"id":"')
  await sleep(450)
  assert.equal((await attach(id)).recovered, false, 'the log expired: a later message could have expired with it')
})

test('a message a live device took renews nothing, yet stays resumable for resume.ttl', async (t) => {
  const settings = { ...STORE_SETTINGS, resume: { size: 100, ttl: 2000 }, presenceTtl: 1000 }
  const { store } = await redisStore(t, settings)
  await store.setAuth('live', 'd', undefined)
  await store.listenUser('live')
  const start = Date.now()
  const online = await store.attach('live', `${start}.i.online`, { digest: 'd' }, null)
  assert.ok(online.ok)
  // The device's attach renewed the log; unrefreshed, the device lapses at 1,000 ms.
  await sleep(600)
  const { id, queued } = await store.sendToUser('live', '{"id":"')
  assert.equal(queued, false, 'the device took it')
  // At 2,300 ms the message is within resume.ttl, though a log that lived resume.ttl from its last renewal
  // would be gone.
  await sleep(start + 2300 - Date.now())
  const back = await store.attach('live', `${Date.now()}.i.back`, { digest: 'd' }, online.synced)
  assert.ok(back.ok)
  assert.deepEqual([back.recovered, back.missed.map((m) => String(m.id))], [true, [id]])
})
