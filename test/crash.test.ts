import { test } from 'node:test'
import type { TestContext } from 'node:test'
import type { ChildProcess } from 'node:child_process'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { Redis } from 'ioredis'
import { startApp, HASH } from './helpers/app.ts'
import type { TestApp } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { spawnInstance } from './helpers/instance.ts'
import { startRedis } from './helpers/redis.ts'

const HEARTBEAT = 200

/** Instance A in this process, and a victim instance in a child process; both share one Redis. */
async function survivorAndVictim (t: TestContext): Promise<{ a: TestApp, child: ChildProcess, url: string, redisUrl: string }> {
  const redis = await startRedis()
  const a = await startApp({ redis: redis.url, heartbeatInterval: HEARTBEAT })
  const { child, url } = await spawnInstance(redis.url, HEARTBEAT)
  t.after(async () => {
    child.kill('SIGKILL')
    await a.app.close()
    await redis.stop()
  })
  return { a, child, url, redisUrl: redis.url }
}

test('a SIGKILLed instance stops counting within 3 heartbeats and its users\' messages are queued', async (t) => {
  const { a, child, url, redisUrl } = await survivorAndVictim(t)

  await a.app.comet.registerAuth('victim', HASH)
  const device = await TestClient.open(url)
  await device.auth('victim', HASH)
  assert.equal(await a.app.comet.isOnline('victim'), true)
  assert.equal((await a.app.comet.sendToUser('victim', 'e', 'live')).queued, false)
  await device.type('message')

  child.kill('SIGKILL')
  await once(child, 'exit')
  const killedAt = Date.now()
  await device.closed

  // The kernel closed the dead instance's Redis connections; once Redis has processed that (a moment, not
  // heartbeats), nothing is published into the void. The moment before is what resume (since) covers.
  const admin = new Redis(redisUrl)
  t.after(() => admin.disconnect())
  await eventually(async () => ((await admin.pubsub('NUMSUB', 'comet:{u:victim}')) as [string, number])[1] === 0, 'Redis dropped the dead subscriber', 2000)
  const after = await a.app.comet.sendToUser('victim', 'e', 'while-down')
  assert.equal(after.queued, true)

  await eventually(async () => !(await a.app.comet.isOnline('victim')), 'presence of the dead instance lapses', 3 * HEARTBEAT + 1000)
  const presence = await a.app.comet.presence('victim')
  assert.equal(presence.devices, 0)
  assert.ok(presence.lastSeen !== null && presence.lastSeen.getTime() <= killedAt)

  const back = await TestClient.open(a.url)
  t.after(() => back.close())
  assert.equal((await back.auth('victim', HASH)).queued, 1)
  assert.equal((await back.type('message')).id, after.id)
})

test('a frozen instance (no socket closed, so Redis still counts its subscriber) stops counting after 3 heartbeats; messages are queued', async (t) => {
  const { a, child, url } = await survivorAndVictim(t)
  await a.app.comet.registerAuth('frozen', HASH)
  const device = await TestClient.open(url)
  t.after(() => device.ws.terminate())
  await device.auth('frozen', HASH)

  child.kill('SIGSTOP')
  const stoppedAt = Date.now()
  await eventually(async () => !(await a.app.comet.isOnline('frozen')), 'presence lapses', 3 * HEARTBEAT + 1000)
  assert.ok(Date.now() - stoppedAt >= 2 * HEARTBEAT, 'not before its devices lapse')
  const sent = await a.app.comet.sendToUser('frozen', 'e', 'while-frozen')
  assert.equal(sent.queued, true, 'queued although the frozen subscriber still receives the publish')

  const back = await TestClient.open(a.url)
  t.after(() => back.close())
  assert.equal((await back.auth('frozen', HASH)).queued, 1)
  assert.equal((await back.type('message')).id, sent.id)
})
