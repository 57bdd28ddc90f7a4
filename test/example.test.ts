import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { TestClient } from './helpers/client.ts'

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
