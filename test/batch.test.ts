// The script builder and per-turn batching (lib/store/redis/script.ts, batch.ts) against a real
// redis-server: the calls of one turn share an EVALSHA, each gets its own named KEYS and ARGV and its own
// reply or error, in both wire layouts (a batch of one call, and of many); a list of calls (many) gets
// batches of its own.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { loadScripts, script } from '../lib/store/redis/script.ts'
import { commandCalls, startRedis } from './helpers/redis.ts'

const scripts = {
  store: script<[string, string, string, string, string]>()({
    keys: ['key'],
    shared: ['prefix'],
    argv: ['value'],
    list: 'rest',
    body: new URL('./fixtures/batch-store.lua', import.meta.url)
  })
}

async function redisClient (t: TestContext): Promise<Redis> {
  const redis = await startRedis()
  const client = new Redis(redis.url)
  t.after(async () => {
    client.disconnect()
    await redis.stop()
  })
  return client
}

test('batched scripts: each call of a turn gets its own keys, arguments and reply; a failing call fails alone', async (t) => {
  const client = await redisClient(t)
  const run = loadScripts(client, scripts, false)
  await client.config('RESETSTAT')

  // One call in its turn: the single-call layout.
  assert.deepEqual(await run.store({ key: 'k0', prefix: 'p-', value: 'zero', rest: ['x', 'y'] }), ['k0', 'p-', 'zero', 'x,y', 'PUBLISH'])
  await assert.rejects(run.store({ key: 'k9', prefix: 'p-', value: 'boom', rest: [] }), /boom: k9/)

  // Four calls in one turn: one EVALSHA; the shared prefix is taken from the first call.
  const results = await Promise.allSettled([
    run.store({ key: 'k1', prefix: 'p-', value: 'one', rest: [] }),
    run.store({ key: 'k2', prefix: 'ignored-', value: 'two', rest: ['x', 'z'] }),
    run.store({ key: 'k3', prefix: 'p-', value: 'boom', rest: [] }),
    run.store({ key: 'k4', prefix: 'p-', value: 'four', rest: [] })
  ])
  assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? r.value : String(r.reason)), [
    ['k1', 'p-', 'one', '', 'PUBLISH'],
    ['k2', 'p-', 'two', 'x,z', 'PUBLISH'],
    'ReplyError: boom: k3',
    ['k4', 'p-', 'four', '', 'PUBLISH']
  ])
  assert.deepEqual(await client.mget('k0', 'k1', 'k2', 'k3', 'k4', 'k9'), ['p-zero', 'p-one', 'p-two', null, 'p-four', null])
  const calls = await commandCalls(client)
  assert.equal(calls('evalsha') + calls('eval'), 3, 'two single calls and one batch of four')
})

test('scripts: sharded pub/sub is a variant of its own, side by side on one client', async (t) => {
  const client = await redisClient(t)
  const plain = loadScripts(client, scripts, false)
  const sharded = loadScripts(client, scripts, true)
  assert.equal((await sharded.store({ key: 'a', prefix: '', value: 'b', rest: [] }))[4], 'SPUBLISH')
  assert.equal((await plain.store({ key: 'a', prefix: '', value: 'b', rest: [] }))[4], 'PUBLISH')
})

test('many: a list of calls runs as batches of its own, shared ARGV from its first call; a failing call rejects the list', async (t) => {
  const client = await redisClient(t)
  const run = loadScripts(client, scripts, false)
  await run.store({ key: 'warm', prefix: '', value: 'w', rest: [] })
  await client.config('RESETSTAT')
  const calls = Array.from({ length: 130 }, (_, i) => ({ key: `m${i}`, prefix: 'list-', value: String(i), rest: [] }))
  // A call of the same turn outside the list keeps its own shared ARGV.
  const [replies, alone] = await Promise.all([run.store.many(calls), run.store({ key: 'alone', prefix: 'own-', value: 'x', rest: [] })])
  assert.deepEqual(replies.map((r) => r[2]), calls.map((c) => c.value), 'replies in the order of the calls')
  assert.ok(replies.every((r) => r[1] === 'list-'))
  assert.equal(alone[1], 'own-')
  const counted = await commandCalls(client)
  assert.equal(counted('evalsha') + counted('eval'), 4, '130 calls: three batches of at most 64, and the lone call')
  await assert.rejects(run.store.many([{ key: 'ok', prefix: '', value: 'fine', rest: [] }, { key: 'bad', prefix: '', value: 'boom', rest: [] }]), /boom: bad/)
})
