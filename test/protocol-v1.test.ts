import { test } from 'node:test'
import assert from 'node:assert/strict'
import { HASH, startApp } from './helpers/app.ts'
import { appOn } from './helpers/backends.ts'
import { TestClient } from './helpers/client.ts'

// The corners of docs/protocol.md a client written from the document alone meets.

test('the wire accepts an integer userId and answers with its decimal string', async (t) => {
  const { app, url } = await startApp()
  t.after(() => app.close())
  await app.comet.registerAuth(42, HASH)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  client.send({ type: 'auth', userId: 42, hash: HASH, ref: 1 })
  assert.equal((await client.type('ready')).userId, '42')
})

test('an anonymous ready carries userId null and nothing else', async (t) => {
  const { app, url } = await startApp()
  t.after(() => app.close())
  const client = await TestClient.open(url)
  t.after(() => client.close())
  client.send({ type: 'auth', ref: 1 })
  assert.deepEqual(await client.type('ready'), { type: 'ready', userId: null, ref: 1 })
})

for (const backend of ['memory', 'redis'] as const) {
  test(`${backend}: last, for a user who never got a message, is the time of ready in ms × 1000, below every later id`, async (t) => {
    const { app, url } = await appOn(t, backend)
    await app.comet.registerAuth('fresh', HASH)
    const client = await TestClient.open(url)
    t.after(() => client.close())
    const before = Date.now()
    const ready = await client.auth('fresh', HASH)
    const last = Number(ready['last'])
    assert.ok(last >= (before - 1000) * 1000 && last <= (Date.now() + 1000) * 1000, `last ${ready['last']} is a clock value`)
    const { id } = await app.comet.sendToUser('fresh', 'e', 1)
    assert.ok(Number(id) > last)
  })
}

test('an auth with userId but no hash gets bad_frame, and the socket may still authenticate', async (t) => {
  const { app, url } = await startApp()
  t.after(() => app.close())
  await app.comet.registerAuth('u', HASH)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  client.send({ type: 'auth', userId: 'u', ref: 'a' })
  const error = await client.type('error')
  assert.equal(error['code'], 'bad_frame')
  assert.equal(error['ref'], 'a')
  client.send({ type: 'auth', hash: HASH, ref: 'b' })
  assert.equal((await client.next((f) => f.type === 'error' && f['ref'] === 'b'))['code'], 'bad_frame')
  assert.equal((await client.auth('u', HASH)).userId, 'u')
})
