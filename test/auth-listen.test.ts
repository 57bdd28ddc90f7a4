import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { startPair } from './helpers/pair.ts'

// A hash login listens for the user only once its digest is good. These hold that a login that fails, or
// whose socket goes while it is judged, leaves nothing behind, and that messages routed meanwhile reach
// the user's real devices once, or wait in the queue.

async function listeners (admin: Redis, userId: string): Promise<number> {
  const [, count] = await admin.pubsub('NUMSUB', `comet:{u:${userId}}`) as [string, number]
  return Number(count)
}

test('a failed hash login stops listening for the user; the user\'s devices get every message once', async (t) => {
  const { a, b, redis } = await startPair(t, { authRateLimit: false })
  const admin = new Redis(redis!.url)
  t.after(() => admin.disconnect())
  await a.app.comet.registerAuth('v', HASH)
  const device = await TestClient.open(b.url)
  t.after(() => device.close())
  await device.auth('v', HASH)
  assert.equal(await listeners(admin, 'v'), 1)

  const sent: string[] = []
  for (let round = 0; round < 20; round++) {
    const wrong = await TestClient.open(a.url)
    wrong.send({ type: 'auth', userId: 'v', hash: 'not-the-hash-of-v-at-all' })
    // Sends while the wrong login is being judged on A.
    for (let i = 0; i < 3; i++) sent.push((await a.app.comet.sendToUser('v', 'e', { round, i })).id)
    assert.equal(await wrong.closed, 4401)
    // A socket that goes away while it is judged.
    const gone = await TestClient.open(a.url)
    gone.send({ type: 'auth', userId: 'v', hash: HASH })
    gone.ws.terminate()
  }
  await eventually(async () => await listeners(admin, 'v') === 1, 'only B listens for v')
  await eventually(() => device.messages().length >= sent.length, 'the device got every message')
  assert.deepEqual(device.messages().map((m) => m.id), sent, 'once each, in order')
  // Nothing was put in the queue for the device that was online all along.
  const next = await TestClient.open(a.url)
  t.after(() => next.close())
  const ready = await next.auth('v', HASH)
  assert.equal(ready.queued, 0)
})
