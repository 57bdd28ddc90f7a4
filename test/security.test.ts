import { test } from 'node:test'
import assert from 'node:assert/strict'
import { appOn } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import { TestClient, upgrade } from './helpers/client.ts'

test('by default only pages of the same host may open the socket (cross-site WebSocket hijacking)', async (t) => {
  const { url } = await appOn(t, 'memory')
  const host = new URL(url).host
  assert.equal(await upgrade(url, { origin: 'https://evil.example' }), 403)
  assert.equal(await upgrade(url, { origin: `http://${host}` }), 'open')
  assert.equal(await upgrade(url, { origin: 'null' }), 403)
  assert.equal(await upgrade(url), 'open', 'non-browser clients send no Origin')
})

test('allowedOrigins lists the origins that may connect', async (t) => {
  const { url } = await appOn(t, 'memory', { allowedOrigins: ['https://app.example'] })
  assert.equal(await upgrade(url, { origin: 'https://app.example' }), 'open')
  assert.equal(await upgrade(url, { origin: 'https://APP.example' }), 'open')
  assert.equal(await upgrade(url, { origin: `http://${new URL(url).host}` }), 403)
  const any = await appOn(t, 'memory', { allowedOrigins: '*' })
  assert.equal(await upgrade(any.url, { origin: 'https://anything.example' }), 'open')
})

test('an address that keeps failing authentication is refused with 429; other addresses are not', async (t) => {
  const { app, url } = await appOn(t, 'redis', { authRateLimit: { max: 3 } })
  await app.comet.registerAuth('target', HASH)
  for (let i = 0; i < 3; i++) {
    const attacker = await TestClient.open(url)
    attacker.send({ type: 'auth', userId: 'target', hash: `guess-number-${i}-xxxxxxxx` })
    assert.equal(await attacker.closed, 4401)
  }
  assert.equal(await upgrade(url), 429, 'the attacking address is refused before the socket opens')
  const user = await TestClient.open(url, { localAddress: '127.0.0.2' })
  t.after(() => user.close())
  await user.auth('target', HASH)
})

test('failures for one user id get slower, but the real user is never locked out', async (t) => {
  const { app, url } = await appOn(t, 'memory', { authRateLimit: { max: 1000 } })
  await app.comet.registerAuth('victim', HASH)
  const answered: number[] = []
  for (let i = 0; i < 5; i++) {
    const attacker = await TestClient.open(url, { localAddress: `127.0.0.${10 + i}` })
    const started = Date.now()
    attacker.send({ type: 'auth', userId: 'victim', hash: `wrong-guess-${i}-xxxxxxxxx` })
    assert.equal(await attacker.closed, 4401)
    answered.push(Date.now() - started)
  }
  assert.ok((answered[4] as number) >= 900, `the fifth failure waited ${answered[4]} ms`)
  const real = await TestClient.open(url)
  t.after(() => real.close())
  const ready = await real.auth('victim', HASH)
  assert.equal(ready.userId, 'victim')
})

test('registerAuth refuses hashes shorter than minHashLength', async (t) => {
  const { app } = await appOn(t, 'memory', { minHashLength: 32 })
  await assert.rejects(app.comet.registerAuth('u', 'x'.repeat(31)), { code: 'FST_ERR_COMET_HASH' })
  await app.comet.registerAuth('u', 'abcdefgh'.repeat(4))
})

test('a flood of frames while one waits on the store is cut (1008); other connections are unaffected', async (t) => {
  const { app, url } = await appOn(t, 'redis')
  await app.comet.registerAuth('calm', HASH)
  const calm = await TestClient.open(url)
  t.after(() => calm.close())
  await calm.auth('calm', HASH)
  const flood = await TestClient.open(url)
  flood.send({ type: 'auth', userId: 'nobody', hash: HASH })
  for (let i = 0; i < 500; i++) flood.send({ type: 'ping' })
  assert.equal(await flood.closed, 1008)
  await app.comet.sendToUser('calm', 'e', 'still here')
  assert.equal((await calm.type('message')).data, 'still here')
})
