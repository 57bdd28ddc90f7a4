// The per-turn script batching (lib/store/redis/batch.ts) against a real redis-server: the calls of one
// turn share an EVALSHA, each gets its own KEYS and ARGV and its own reply or error, in both wire layouts
// (a batch of one call, and of many).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { Redis } from 'ioredis'
import { defineScripts } from '../lib/store/redis/client.ts'
import type { Script } from '../lib/store/redis/batch.ts'
import { commandCalls, startRedis } from './helpers/redis.ts'

/** KEYS: key. ARGV: prefix (shared), value. Sets key to prefix .. value; 'boom' fails this call only. */
const store: Script = {
  numberOfKeys: 1,
  shared: 1,
  lua: `
if ARGV[2] == 'boom' then return redis.error_reply('boom: ' .. KEYS[1]) end
redis.call('SET', KEYS[1], ARGV[1] .. ARGV[2])
return { KEYS[1], ARGV[1], ARGV[2], #KEYS, #ARGV }
`
}

interface Commands { testStore (...args: string[]): Promise<[string, string, string, number, number]> }

test('batched scripts: each call of a turn gets its own keys, arguments and reply; a failing call fails alone', async (t) => {
  const redis = await startRedis()
  const client = new Redis(redis.url)
  t.after(async () => {
    client.disconnect()
    await redis.stop()
  })
  const run = defineScripts<Commands>(client, [['testStore', store]], false)
  await client.config('RESETSTAT')

  // One call in its turn: the single-call layout.
  assert.deepEqual(await run.testStore('k0', 'p-', 'zero'), ['k0', 'p-', 'zero', 1, 2])
  await assert.rejects(run.testStore('k9', 'p-', 'boom'), /boom: k9/)

  // Four calls in one turn: one EVALSHA; the shared prefix is taken from the first call.
  const results = await Promise.allSettled([
    run.testStore('k1', 'p-', 'one'),
    run.testStore('k2', 'ignored-', 'two'),
    run.testStore('k3', 'p-', 'boom'),
    run.testStore('k4', 'p-', 'four')
  ])
  assert.deepEqual(results.map((r) => r.status === 'fulfilled' ? r.value : String(r.reason)), [
    ['k1', 'p-', 'one', 1, 2],
    ['k2', 'p-', 'two', 1, 2],
    'ReplyError: boom: k3',
    ['k4', 'p-', 'four', 1, 2]
  ])
  assert.deepEqual(await client.mget('k0', 'k1', 'k2', 'k3', 'k4', 'k9'), ['p-zero', 'p-one', 'p-two', null, 'p-four', null])
  const calls = await commandCalls(client)
  assert.equal(calls('evalsha') + calls('eval'), 3, 'two single calls and one batch of four')
})
