import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Redis } from 'ioredis'
import { HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { sharedCluster } from './helpers/backends.ts'
import { PAIR_BACKENDS, startPair } from './helpers/pair.ts'

/** Rounds per backend: `CHURN_RUNS=50` for a long verification run. */
const RUNS = Number(process.env['CHURN_RUNS'] ?? 3)
const SENDS = 300

/**
 * Stalls every Redis node 2 ms out of every 10 ms from a side connection: replies and pub/sub messages
 * bunch up, which widens the window between a send's PUBLISH and the moment an instance reads it.
 */
function stall (nodes: Redis[]): () => Promise<void> {
  const stalling = { on: true }
  const loop = (async () => {
    while (stalling.on) {
      await Promise.all(nodes.map(async (node) => await node.call('DEBUG', 'SLEEP', '0.002').catch(() => {})))
      await sleep(8)
    }
  })()
  return async () => {
    stalling.on = false
    await loop
    for (const node of nodes) node.disconnect()
  }
}

for (const backend of PAIR_BACKENDS) {
  describe(`a device churning on B while A sends (${backend}, ${RUNS} rounds)`, () => {
    for (let run = 1; run <= RUNS; run++) {
      test(`round ${run}: every message reaches the device exactly once, live or from the queue`, async (t) => {
        // A queue that holds every send: an overflow (reported as `dropped`) is not what this test is about.
        const { a, b, redis } = await startPair(t, { offlineQueue: { maxMessages: 1000, ttl: 60_000 } }, backend)
        const nodes = redis !== null
          ? [new Redis(redis.url)]
          : (await sharedCluster()).masters().map(({ port }) => new Redis(port, '127.0.0.1'))
        const stop = stall(nodes)
        t.after(stop)
        const user = `churn${run}`
        await a.app.comet.registerAuth(user, HASH)
        const received = new Map<string, number>()
        const count = (client: TestClient): void => {
          for (const m of client.messages()) received.set(m.id, (received.get(m.id) ?? 0) + 1)
        }
        const sending = { on: true }
        let connections = 0
        let dropped = 0
        const churn = (async () => {
          while (sending.on) {
            const client = await TestClient.open(b.url)
            connections++
            dropped += Number((await client.auth(user, HASH))['dropped'])
            await sleep(5 + Math.floor(Math.random() * 21))
            await client.close()
            count(client)
          }
        })()
        const sent: string[] = []
        for (let i = 0; i < SENDS; i++) {
          sent.push((await a.app.comet.sendToUser(user, 'n', i)).id)
          if (i % 2 === 0) await sleep(1)
        }
        sending.on = false
        await churn
        await stop()
        // B has seen the last close through: what its sockets owed is back in the queue.
        await eventually(async () => (await a.app.comet.presence(user)).devices === 0, 'the churned device gone', 10_000)

        // Whatever no socket wrote waits in the queue: one device on A takes it.
        const last = await TestClient.open(a.url)
        const ready = await last.auth(user, HASH)
        dropped += Number(ready['dropped'])
        await eventually(() => last.messages().length >= ready['queued'], 'the queue arrives')
        await sleep(100)
        await last.close()
        count(last)

        assert.ok(connections >= 5, `the device connected ${connections} times`)
        assert.equal(dropped, 0, 'the queue never overflowed')
        const missing = sent.filter((id) => !received.has(id))
        const twice = [...received].filter(([, n]) => n > 1).map(([id]) => id)
        assert.deepEqual(missing, [], `no message lost (${connections} connections)`)
        assert.deepEqual(twice, [], 'no message written twice')
        assert.equal(received.size, sent.length)
      })
    }
  })
}
