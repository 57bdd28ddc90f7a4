import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import WebSocket from 'ws'
import { CometClient } from '../lib/client/index.ts'
import { startApp, HASH } from './helpers/app.ts'
import { Balancer } from './helpers/balancer.ts'
import { eventually } from './helpers/client.ts'
import { spawnInstance } from './helpers/instance.ts'
import { startRedis } from './helpers/redis.ts'

const USERS = 20
const MESSAGES = 600

test('an instance that hangs and is SIGKILLed mid-stream: its users\' clients reconnect through the balancer to the other instance and, resuming, get every message exactly once, in order', async (t) => {
  const redis = await startRedis()
  const a = await spawnInstance(redis.url, 500)
  const b = await spawnInstance(redis.url, 500)
  const balancer = new Balancer([a.port, b.port])
  await balancer.listen()
  const api = await startApp({ redis: redis.url }, false)
  const clients: CometClient[] = []
  t.after(async () => {
    for (const c of clients) c.close()
    a.child.kill('SIGKILL')
    b.child.kill('SIGKILL')
    await balancer.close()
    await api.app.close()
    await redis.stop()
  })

  const received = new Map<string, string[]>()
  const opens = new Map<string, number>()
  for (let i = 0; i < USERS; i++) {
    const userId = `f${i}`
    await api.app.comet.registerAuth(userId, HASH)
    const client = new CometClient({
      url: `ws://127.0.0.1:${balancer.port}/comet`, userId, hash: HASH, WebSocket, window: null, reconnect: { baseDelay: 50, maxDelay: 300 }
    })
    received.set(userId, [])
    client.subscribe('msg', (m) => received.get(userId)?.push(m.id))
    client.on('status', (status) => { if (status === 'open') opens.set(userId, (opens.get(userId) ?? 0) + 1) })
    clients.push(client)
  }
  await eventually(() => clients.every((c) => c.status === 'open'), 'all clients open')

  const sent = new Map<string, string[]>(Array.from(received.keys(), (u) => [u, []]))
  for (let n = 0; n < MESSAGES; n++) {
    const userId = `f${n % USERS}`
    sent.get(userId)?.push((await api.app.comet.sendToUser(userId, 'tick', n)).id)
    // A hangs first (messages routed to it pile up unprocessed), then dies with them.
    if (n === MESSAGES / 3) a.child.kill('SIGSTOP')
    if (n === MESSAGES / 3 + 60) {
      a.child.kill('SIGKILL')
      await once(a.child, 'exit')
    }
    if (n % 10 === 0) await sleep(2)
  }

  await eventually(() => [...sent].every(([u, ids]) => received.get(u)?.length === ids.length), 'every message arrived', 15_000)
  await sleep(200)
  const reconnected = [...opens.values()].filter((n) => n > 1).length
  t.diagnostic(`${reconnected} of ${USERS} clients reconnected after the kill`)
  assert.equal(reconnected, USERS / 2, 'the balancer had put half the clients on A, and all of them moved')
  for (const [userId, ids] of sent) assert.deepEqual(received.get(userId), ids, `${userId}: every message once, in order`)
})
