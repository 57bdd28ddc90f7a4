import { test } from 'node:test'
import assert from 'node:assert/strict'
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
