import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { createRequire, syncBuiltinESMExports } from 'node:module'
import Fastify from 'fastify'
import fc from 'fast-check'
import type { FastifyServerOptions } from 'fastify'
import comet from '../lib/index.ts'
import type { CometOptions } from '../lib/index.ts'
import { appOn } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import { TestClient, upgrade } from './helpers/client.ts'
import { startPair } from './helpers/pair.ts'
import { STORE_SETTINGS } from './helpers/store.ts'
import { MemoryStore } from '../lib/store/memory/index.ts'

/** How an auth attempt ended: 'ready' or the close code. */
async function login (client: TestClient, userId: string, hash: string): Promise<'ready' | number> {
  client.send({ type: 'auth', userId, hash })
  return await Promise.race([client.type('ready', 30_000).then(() => 'ready' as const), client.closed])
}

test('the failed-auth limit holds at the auth frame, across two instances sharing Redis: parallel guesses gain nothing', async (t) => {
  const max = 5
  const { a, b } = await startPair(t, { authRateLimit: { max, window: 60_000 } })
  await a.app.comet.registerAuth('target', HASH)
  // Sockets opened first, then every guess sent at once: the upgrade check cannot see them coming.
  const sockets = await Promise.all(Array.from({ length: 60 }, async (_, i) => await TestClient.open(i % 2 === 0 ? a.url : b.url)))
  t.after(() => { for (const s of sockets) s.ws.terminate() })
  const ends = await Promise.all(sockets.map(async (s, i) => await login(s, 'target', `wrong-guess-${i}-xxxxxxxxx`)))
  const judged = ends.filter((e) => e === 4401).length
  assert.ok(judged >= 1 && judged <= max, `${judged} attempts were judged, with a budget of ${max}`)
  assert.equal(ends.filter((e) => e === 4429).length, 60 - judged, 'the others are refused unjudged')
  // After the limit, correct secrets sent in parallel are refused on either instance, at the frame or at
  // the upgrade.
  const correct = await Promise.all(Array.from({ length: 10 }, async (_, i) => {
    const url = i % 2 === 0 ? a.url : b.url
    const status = await upgrade(url)
    if (status !== 'open') return status
    const client = await TestClient.open(url)
    t.after(() => client.ws.terminate())
    return await login(client, 'target', HASH)
  }))
  assert.ok(correct.every((end) => end === 4429 || end === 429), `correct secrets ended ${correct.join(', ')}`)
  // Another address is not affected.
  const user = await TestClient.open(b.url, { localAddress: '127.0.0.2' })
  t.after(() => user.close())
  assert.equal(await login(user, 'target', HASH), 'ready')
})

test('successful logins are forgiven: an address that logs in often is never limited', async (t) => {
  const { app, url } = await appOn(t, 'redis', { authRateLimit: { max: 3 } })
  await app.comet.registerAuth('often', HASH)
  for (let i = 0; i < 8; i++) {
    const client = await TestClient.open(url)
    assert.equal(await login(client, 'often', HASH), 'ready')
    await client.close()
  }
})

test('a hash registered with ttl ends its sessions at expiry on every instance (4401 expired); a new hash keeps them open', async (t) => {
  const { a, b } = await startPair(t)
  await a.app.comet.registerAuth('short', 'a-secret-that-will-expire', { ttl: 1500 })
  await a.app.comet.registerAuth('rotated', 'first-secret-of-rotated', { ttl: 1500 })
  const ends: Array<Promise<[number, string]>> = []
  const rotated: TestClient[] = []
  for (const url of [a.url, b.url]) {
    const short = await TestClient.open(url)
    ends.push(new Promise((resolve) => short.ws.on('close', (code, reason) => resolve([code, reason.toString()]))))
    await short.auth('short', 'a-secret-that-will-expire')
    const other = await TestClient.open(url)
    t.after(() => other.close())
    await other.auth('rotated', 'first-secret-of-rotated')
    rotated.push(other)
  }
  await b.app.comet.registerAuth('rotated', 'second-secret-of-rotated')
  assert.deepEqual(await Promise.all(ends), [[4401, 'expired'], [4401, 'expired']])
  await new Promise((resolve) => setTimeout(resolve, 500))
  await a.app.comet.sendToUser('rotated', 'e', 'still here')
  for (const client of rotated) {
    assert.equal(client.closeCode, null)
    assert.equal((await client.type('message')).data, 'still here')
  }
})

test('a ttl ends the session on one instance in memory too', async (t) => {
  const { app, url } = await appOn(t, 'memory')
  const secret = await app.comet.createAuth('brief', { ttl: 300 })
  const client = await TestClient.open(url)
  await client.auth('brief', secret)
  const reason = new Promise<string>((resolve) => client.ws.on('close', (_code, r) => resolve(r.toString())))
  assert.equal(await client.closed, 4401)
  assert.equal(await reason, 'expired')
})

test('createAuth returns a fresh 256-bit secret that logs in; weak app secrets are refused', async (t) => {
  const { app, url } = await appOn(t, 'memory')
  const one = await app.comet.createAuth('u1')
  const two = await app.comet.createAuth('u1')
  assert.match(one, /^[A-Za-z0-9_-]{43}$/)
  assert.notEqual(one, two)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  assert.equal((await client.auth('u1', two)).userId, 'u1')
  await assert.rejects(app.comet.registerAuth('u', 'aaaaaaaaaaaaaaaa'), { code: 'FST_ERR_COMET_HASH' })
  await assert.rejects(app.comet.registerAuth('u', 'abababababababab'), { code: 'FST_ERR_COMET_HASH' })
  await assert.rejects(app.comet.createAuth('bad id'), { code: 'FST_ERR_COMET_USER_ID' })
  await app.comet.registerAuth('u', 'an-app-made-secret-0042')
})

async function originApp (t: TestContext, fastify: FastifyServerOptions, options: CometOptions = {}): Promise<string> {
  const app = Fastify({ logger: false, ...fastify })
  await app.register(comet, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  return `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/comet`
}

test('the default origin check compares scheme, host and port; behind a trusted proxy its forwarded ones', async (t) => {
  const url = await originApp(t, {})
  const host = new URL(url).host
  assert.equal(await upgrade(url, { origin: `http://${host}` }), 'open')
  assert.equal(await upgrade(url, { origin: `https://${host}` }), 403, 'https page, http socket')
  assert.equal(await upgrade(url, { origin: `http://${host.replace(/:\d+$/, ':1')}` }), 403, 'another port')
  // A proxy that terminates TLS: the page is https://app.example, the proxy forwards over http.
  const proxied = await originApp(t, { trustProxy: '127.0.0.1' })
  const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'app.example' }
  assert.equal(await upgrade(proxied, { origin: 'https://app.example', headers: forwarded }), 'open')
  assert.equal(await upgrade(proxied, { origin: 'http://app.example', headers: forwarded }), 403)
  // Headers from an address that is not the trusted proxy are ignored.
  const untrusted = await originApp(t, { trustProxy: '10.9.9.9' })
  assert.equal(await upgrade(untrusted, { origin: 'https://app.example', headers: forwarded }), 403)
})

test('unknown users take the same path as known ones: their hash is compared, against a dummy digest', async (t) => {
  const { app, url } = await appOn(t, 'memory', { authRateLimit: false })
  await app.comet.registerAuth('known', HASH)
  // Counts the comparisons the server makes (the real function still does them), through the binding
  // every module's `import { timingSafeEqual } from 'node:crypto'` shares.
  const crypto = createRequire(import.meta.url)('node:crypto') as typeof import('node:crypto')
  const real = crypto.timingSafeEqual
  let compared = 0
  crypto.timingSafeEqual = (a, b) => {
    compared++
    return real(a, b)
  }
  syncBuiltinESMExports()
  t.after(() => {
    crypto.timingSafeEqual = real
    syncBuiltinESMExports()
  })
  for (const userId of ['known', 'unknown']) {
    const client = await TestClient.open(url)
    assert.equal(await login(client, userId, 'a-wrong-guess-of-the-hash'), 4401)
  }
  assert.equal(compared, 2, 'one constant-time comparison per attempt, known user or not')
})

test('property: however parallel attempts interleave, failures judged never exceed the budget, and only failures stay counted', async () => {
  const max = 3
  await fc.assert(fc.asyncProperty(fc.scheduler(), fc.array(fc.boolean(), { minLength: 1, maxLength: 12 }), async (s, correct) => {
    const real = new MemoryStore(STORE_SETTINGS)
    // Every store call resolves when the scheduler says: any order of arrivals, replies and settlements.
    const attempt = s.scheduleFunction(async (address: string) => await real.authAttempt(address, max, 60_000))
    const settle = s.scheduleFunction(async (address: string, failed: boolean) => await real.authSettle(address, failed))
    let failedJudged = 0
    const logins = correct.map(async (ok) => {
      const [admitted, failures] = await attempt('a')
      if (!admitted) {
        assert.ok(failures <= max)
        return
      }
      if (!ok) failedJudged++
      await settle('a', !ok)
    })
    await s.waitFor(Promise.all(logins))
    assert.ok(failedJudged <= max, `${failedJudged} failures judged`)
    // Once every attempt is settled only failures count: the next one is admitted exactly while they leave room.
    const [next, failures] = await s.waitFor(attempt('a'))
    assert.equal(failures, failedJudged)
    assert.equal(next, failedJudged < max)
  }), { numRuns: Number(process.env.REPEAT ?? 200) })
})

test('a crowd of correct logins from one address waits its turn and gets in', async (t) => {
  const { app, url } = await appOn(t, 'redis', { authRateLimit: { max: 3 } })
  const users = Array.from({ length: 20 }, (_, i) => `crowd${i}`)
  for (const user of users) await app.comet.registerAuth(user, HASH)
  const clients = await Promise.all(users.map(async () => await TestClient.open(url)))
  t.after(() => Promise.all(clients.map(async (c) => await c.close())))
  const ends = await Promise.all(clients.map(async (c, i) => await login(c, users[i] as string, HASH)))
  assert.deepEqual(ends, users.map(() => 'ready'))
})
