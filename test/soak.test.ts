import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { startApp, HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { startRedis } from './helpers/redis.ts'

setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

/** `npm run soak` runs this for minutes (SOAK_MS); the suite runs a short pass of the same loop. */
const DURATION = Number(process.env.SOAK_MS ?? 30_000)
const TTL = 1500
const HEARTBEAT = 500
const USERS = 60

function heapMb (): number {
  gc()
  gc()
  return process.memoryUsage().heapUsed / 2 ** 20
}

test(`soak: ${DURATION / 1000} s of mixed traffic with connection churn; heap and Redis memory stay flat; keys of users who never return expire`, async (t) => {
  const redis = await startRedis()
  const admin = new Redis(redis.url)
  const { app, url } = await startApp({
    redis: redis.url,
    heartbeatInterval: HEARTBEAT,
    offlineQueue: { maxMessages: 20, ttl: TTL },
    resume: { size: 20, ttl: TTL },
    lastSeenTtl: TTL,
    history: { 'news*': { size: 20, ttl: TTL } },
    authRateLimit: false
  })
  const live = new Set<TestClient>()
  t.after(async () => {
    for (const c of live) c.ws.terminate()
    admin.disconnect()
    await app.close()
    await redis.stop()
  })
  for (let i = 0; i < USERS; i++) await app.comet.registerAuth(`s${i}`, HASH, { ttl: DURATION + 60_000 })

  const last = new Map<string, string>()
  let sent = 0
  let received = 0
  let rounds = 0
  const samples: Array<{ at: number, heap: number, redis: number }> = []
  const started = Date.now()
  let nextSample = started + DURATION / 3

  while (Date.now() - started < DURATION) {
    rounds++
    // Churn: a few devices leave (remembering the last id they saw) and a few come back with it.
    for (const c of [...live].slice(0, 3)) {
      live.delete(c)
      await c.close()
      received += c.messages().length
    }
    for (let i = 0; i < 3; i++) {
      const userId = `s${Math.floor(Math.random() * USERS)}`
      const c = await TestClient.open(url)
      await c.auth(userId, HASH, last.has(userId) ? { since: last.get(userId) } : {})
      c.send({ type: 'subscribe', channel: `news${i}` })
      c.ws.on('message', () => {
        const id = c.messages().at(-1)?.id
        if (id !== undefined) last.set(userId, id)
      })
      live.add(c)
    }
    // Traffic: private messages to random users (online or not), channel publishes, and users who will
    // never come back.
    const work: Array<Promise<unknown>> = []
    for (let i = 0; i < 20; i++) work.push(app.comet.sendToUser(`s${Math.floor(Math.random() * USERS)}`, 'e', { i, pad: 'x'.repeat(200) }))
    for (let i = 0; i < 3; i++) work.push(app.comet.publish(`news${i}`, 'e', { rounds }))
    work.push(app.comet.sendToUser(`gone${rounds}`, 'e', 'never read'))
    await Promise.all(work)
    sent += 20
    if (Date.now() >= nextSample) {
      samples.push({ at: Date.now() - started, heap: heapMb(), redis: Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]) / 2 ** 20 })
      nextSample += DURATION / 6
    }
    await sleep(10)
  }
  samples.push({ at: Date.now() - started, heap: heapMb(), redis: Number(/used_memory:(\d+)/.exec(await admin.info('memory'))?.[1]) / 2 ** 20 })
  t.diagnostic(`${rounds} rounds, ${sent} private messages, ${received} received by churned devices; samples (s, heap MB, redis MB): ` +
    samples.map((s) => `${(s.at / 1000).toFixed(0)}:${s.heap.toFixed(1)}/${s.redis.toFixed(2)}`).join(' '))

  const warm = samples[0] as { heap: number, redis: number }
  const end = samples.at(-1) as { heap: number, redis: number }
  assert.ok(samples.length >= 3)
  assert.ok(end.heap < warm.heap * 1.25 + 8, `heap grew from ${warm.heap.toFixed(1)} to ${end.heap.toFixed(1)} MB`)
  assert.ok(end.redis < warm.redis * 1.25 + 2, `redis grew from ${warm.redis.toFixed(2)} to ${end.redis.toFixed(2)} MB`)

  // Users who were sent to once and never came back leave nothing behind: the meta goes last, after the
  // longest of the TTLs, the log's 4 heartbeats more and one heartbeat more (lib/store/redis/index.ts).
  await eventually(async () => (await admin.keys('comet:{u:gone*')).length === 0, 'keys of users who never return expire', TTL + 7 * HEARTBEAT + 1000)
})
