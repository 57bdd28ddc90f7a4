import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { Redis } from 'ioredis'
import { HASH, startApp } from './helpers/app.ts'
import { TestClient } from './helpers/client.ts'
import { startRedis } from './helpers/redis.ts'

// `npm start` runs this example from the built package (dist/), exactly as a user would.
test('the example app serves its page, logs a user in and pushes to them', async (t) => {
  const child = spawn(process.execPath, [new URL('../examples/basic/server.js', import.meta.url).pathname], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.after(() => child.kill('SIGKILL'))
  let base = ''
  for await (const line of createInterface({ input: child.stdout as Readable })) {
    const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
    if (match?.[1] !== undefined) {
      base = match[1]
      break
    }
  }
  const page = await fetch(base)
  assert.match(await page.text(), /fastify-comet/)
  const { userId, hash } = await (await fetch(`${base}/login/42`)).json() as { userId: string, hash: string }
  const client = await TestClient.open(`${base.replace('http', 'ws')}/comet`)
  await client.auth(userId, hash)
  const sent = await (await fetch(`${base}/send/42`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"text":"hi"}' })).json() as { id: string }
  const message = await client.type('message')
  assert.deepEqual([message.id, message.data], [sent.id, { text: 'hi' }])
  await client.close()
  child.kill('SIGTERM')
  await once(child, 'exit')
})

// examples/worker runs from the built package too, importing fastify-comet/emitter as a user would.
test('the worker example sends each job once, and stops on SIGTERM', async (t) => {
  const redis = await startRedis()
  const { app, url } = await startApp({ redis: redis.url })
  t.after(async () => {
    await app.close()
    await redis.stop()
  })
  await app.comet.registerAuth('42', HASH)
  const device = await TestClient.open(url)
  t.after(() => device.close())
  await device.auth('42', HASH)
  const child = spawn(process.execPath, [new URL('../examples/worker/worker.js', import.meta.url).pathname], {
    env: { ...process.env, REDIS_URL: redis.url },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.after(() => child.kill('SIGKILL'))
  const lines = createInterface({ input: child.stdout as Readable })[Symbol.asyncIterator]()
  assert.match((await lines.next()).value as string, /waiting for jobs/)
  const queue = new Redis(redis.url)
  t.after(() => queue.disconnect())
  const job = JSON.stringify({ id: 'job-1', userId: '42', event: 'note', data: { text: 'from a worker' } })
  await queue.rpush('jobs', job, job) // the same job twice, as a retry would
  await queue.rpush('jobs', JSON.stringify({ id: 'job-2', userId: '42', event: 'note', data: 2 }))
  const second = await device.next((f) => f.type === 'message' && f.data === 2)
  assert.deepEqual(device.messages().map((m) => m.data), [{ text: 'from a worker' }, 2])
  assert.match((await lines.next()).value as string, /job-1 → user 42/)
  assert.ok(second.id !== undefined)
  child.kill('SIGTERM')
  const [code] = await once(child, 'exit')
  assert.equal(code, 0, 'the worker closes the emitter and exits by itself')
  assert.equal(await queue.llen('jobs:working'), 0)
})
