import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { CometEmitter } from '../lib/emitter/index.ts'
import { messageHead } from '../lib/protocol/frames.ts'
import { MemoryStore } from '../lib/store/memory/index.ts'
import type { Store } from '../lib/store/types.ts'
import { redisStore, STORE_SETTINGS } from './helpers/store.ts'
import { HASH } from './helpers/app.ts'
import { appOn, BACKENDS, sharedCluster, testPrefix } from './helpers/backends.ts'
import { member } from './helpers/channels.ts'
import type { TestClient } from './helpers/client.ts'
import { PAIR_BACKENDS, startPair } from './helpers/pair.ts'

/**
 * Every message the client got on `channel` up to a marker sent after the sends under test: messages of
 * one user (one channel) arrive in order, so once the marker is in, nothing sent before it is still coming.
 */
async function upToMarker (client: TestClient, send: (event: string) => Promise<{ id: string }>, channel = 'msg'): Promise<string[]> {
  const marker = await send('marker')
  await client.next((f) => f.type === 'message' && f.id === marker.id)
  return client.messages(channel).filter((m) => m.event !== 'marker').map((m) => m.id as string)
}

for (const backend of BACKENDS) {
  describe(`idempotent sends on the ${backend} store`, () => {
    test('two racing repeats of a send deliver once and resolve to the first result; keys are per user', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('u', HASH)
      await app.comet.registerAuth('v', HASH)
      const u = await member(url, 'u')
      const v = await member(url, 'v')
      t.after(() => Promise.all([u.close(), v.close()]))
      const send = async (user: string, key: string): Promise<{ id: string, queued: boolean }> =>
        await app.comet.sendToUser(user, 'e', key, { idempotencyKey: key })
      const [first, repeat] = await Promise.all([send('u', 'job:1'), send('u', 'job:1')])
      assert.deepEqual(repeat, first)
      assert.deepEqual(await send('u', 'job:1'), first, 'a later repeat too')
      const other = await send('u', 'job.2_x-Y')
      assert.notEqual(other.id, first.id)
      const forV = await send('v', 'job:1')
      assert.deepEqual(await upToMarker(u, (e) => app.comet.sendToUser('u', e, null)), [first.id, other.id])
      assert.deepEqual(await upToMarker(v, (e) => app.comet.sendToUser('v', e, null)), [forV.id], 'the same key for another user is its own')
    })

    test('racing repeats for a user with no device queue once', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('u', HASH)
      const results = await Promise.all([1, 2, 3].map(async () => await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'k' })))
      assert.deepEqual(results.map((r) => r.queued), [true, true, true])
      assert.equal(new Set(results.map((r) => r.id)).size, 1)
      const device = await member(url, 'u')
      t.after(() => device.close())
      assert.deepEqual(device.frames.find((f) => f.type === 'ready')?.queued, 1)
      assert.deepEqual(await upToMarker(device, (e) => app.comet.sendToUser('u', e, null)), [results[0]?.id])
    })

    test('racing repeats of a publish deliver once, and are kept once in history', async (t) => {
      const { app, url } = await appOn(t, backend, { history: { kept: { size: 10 } } })
      const reader = await member(url, null, ['news', 'kept'])
      t.after(() => reader.close())
      for (const channel of ['news', 'kept']) {
        const publish = async (key: string): Promise<{ id: string }> => await app.comet.publish(channel, 'e', key, { idempotencyKey: key })
        const [first, repeat] = await Promise.all([publish('a'), publish('a')])
        assert.deepEqual(repeat, first, channel)
        const other = await publish('b')
        assert.deepEqual(await upToMarker(reader, (e) => app.comet.publish(channel, e, null), channel), [first.id, other.id], channel)
      }
      assert.deepEqual((await app.comet.history('kept')).messages.map((m) => m.data), ['a', 'b', null])
    })

    test('a key is remembered for idempotencyTtl, then sends again', async (t) => {
      const { app } = await appOn(t, backend, { idempotencyTtl: 300 })
      const first = await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'k' })
      assert.deepEqual(await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'k' }), first)
      const published = await app.comet.publish('news', 'e', 1, { idempotencyKey: 'k' })
      await sleep(500)
      assert.notEqual((await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'k' })).id, first.id)
      assert.notEqual((await app.comet.publish('news', 'e', 1, { idempotencyKey: 'k' })).id, published.id)
    })
  })
}

for (const backend of PAIR_BACKENDS) {
  test(`on ${backend}, two instances and an emitter racing with one key deliver once`, async (t) => {
    const prefix = testPrefix()
    const { a, b, redis } = await startPair(t, { keyPrefix: prefix }, backend)
    const emitter = new CometEmitter({
      redis: backend === 'redis' ? redis?.url as string : { cluster: (await sharedCluster()).startup },
      keyPrefix: prefix
    })
    t.after(() => emitter.close())
    await a.app.comet.registerAuth('u', HASH)
    const onA = await member(a.url, 'u', ['news'])
    const onB = await member(b.url, 'u')
    t.after(() => Promise.all([onA.close(), onB.close()]))
    const senders = [a.app.comet, b.app.comet, emitter]
    const sent = await Promise.all(senders.map(async (s) => await s.sendToUser('u', 'e', 1, { idempotencyKey: 'order-17' })))
    assert.equal(new Set(sent.map((r) => r.id)).size, 1)
    const published = await Promise.all(senders.map(async (s) => await s.publish('news', 'e', 1, { idempotencyKey: 'order-17' })))
    assert.equal(new Set(published.map((r) => r.id)).size, 1)
    for (const device of [onA, onB]) assert.deepEqual(await upToMarker(device, (e) => a.app.comet.sendToUser('u', e, null)), [sent[0]?.id])
    assert.deepEqual(await upToMarker(onA, (e) => b.app.comet.publish('news', e, null), 'news'), [published[0]?.id])
  })
}

test('an idempotencyKey must match [A-Za-z0-9_.:-]{1,128}', async (t) => {
  const { app } = await appOn(t, 'memory')
  for (const options of [{ idempotencyKey: '' }, { idempotencyKey: 'a b' }, { idempotencyKey: 'x'.repeat(129) }, { idempotencyKey: 5 }, { idempotencyKey: 'ä' }, 'k']) {
    await assert.rejects(app.comet.sendToUser('u', 'e', 1, options as never), { code: 'FST_ERR_COMET_IDEMPOTENCY_KEY' }, JSON.stringify(options))
    await assert.rejects(app.comet.publish('news', 'e', 1, options as never), { code: 'FST_ERR_COMET_IDEMPOTENCY_KEY' }, JSON.stringify(options))
  }
  assert.equal((await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'x'.repeat(128) })).queued, true)
  assert.equal((await app.comet.sendToUser('u', 'e', 1, {})).queued, true, 'no key: an ordinary send')
})

test('property: any interleaving of keyed sends, repeats included, stores each key once per user (memory, Redis)', async (t) => {
  const runs = Number(process.env.REPEAT ?? 20)
  const stores: Array<[string, Store]> = [['memory', new MemoryStore(STORE_SETTINGS)], ['redis', (await redisStore(t)).store]]
  let n = 0
  for (const [name, store] of stores) {
    await fc.assert(fc.asyncProperty(fc.scheduler(), fc.array(fc.tuple(fc.constantFrom('a', 'b'), fc.constantFrom('k1', 'k2', 'k3')), { minLength: 1, maxLength: 12 }), async (s, sends) => {
      const run = ++n
      const user = (u: string): string => `${u}${run}`
      // The scheduler picks the order in which the sends start; they then race in the store.
      const results = sends.map(async ([u, key]) => {
        await s.schedule(Promise.resolve(), `${u}:${key}`)
        return await store.sendToUser(user(u), messageHead('msg', 'e', JSON.stringify(key)), { key, ttl: 60_000 })
      })
      await s.waitAll()
      const settled = await Promise.all(results)
      for (const u of ['a', 'b']) {
        const keys = new Set(sends.filter(([v]) => v === u).map(([, key]) => key))
        for (const key of keys) {
          const same = settled.filter((_, i) => sends[i]?.[0] === u && sends[i]?.[1] === key)
          assert.ok(same.every((r) => r.id === same[0]?.id && r.queued), `${name}: every repeat of ${u}/${key} gets the first result`)
        }
        await store.setAuth(user(u), 'digest', undefined)
        const attached = await store.attach(user(u), `${Date.now()}.x.${run}`, { digest: 'digest' }, null)
        assert.ok(attached.ok)
        const queued = attached.queued.map((m) => JSON.parse(m.frame.toString()).data as string)
        assert.deepEqual(queued.sort(), [...keys].sort(), `${name}: each key of ${u} is stored once`)
      }
    }), { numRuns: runs })
  }
})

test('with metrics on, sends keep their idempotencyKey', async (t) => {
  const { app } = await appOn(t, 'memory', { metrics: true })
  const first = await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'k' })
  assert.deepEqual(await app.comet.sendToUser('u', 'e', 1, { idempotencyKey: 'k' }), first)
  const published = await app.comet.publish('news', 'e', 1, { idempotencyKey: 'k' })
  assert.deepEqual(await app.comet.publish('news', 'e', 1, { idempotencyKey: 'k' }), published)
})
