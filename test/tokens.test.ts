import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { generateKeyPairSync } from 'node:crypto'
import { Writable } from 'node:stream'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import fastifyJwt from '@fastify/jwt'
import { createSigner } from 'fast-jwt'
import type { SignerOptions } from 'fast-jwt'
import buildGetJwks from 'get-jwks'
import { Redis } from 'ioredis'
import comet from '../lib/index.ts'
import { CometEmitter } from '../lib/emitter/index.ts'
import type { CometOptions } from '../lib/index.ts'
import { startRedis } from './helpers/redis.ts'
import { startPair } from './helpers/pair.ts'
import { eventually, TestClient } from './helpers/client.ts'
import type { Frame } from './helpers/client.ts'
import { HASH } from './helpers/app.ts'

const SECRET = 'a-test-secret-of-thirty-two-bytes!'
const BACKENDS = ['memory', 'redis'] as const
const { publicKey: RSA_PUBLIC, privateKey: RSA_PRIVATE } = generateKeyPairSync('rsa', { modulusLength: 2048 })
const RSA_PEM = RSA_PUBLIC.export({ type: 'spki', format: 'pem' }) as string

/** An HS256 token; `exp` and the others as fast-jwt signs them (`expiresIn` in ms). */
function sign (claims: Record<string, unknown>, options: Omit<SignerOptions, 'key'> = {}): string {
  return createSigner({ key: SECRET, ...options })(claims)
}

async function login (url: string, token: string, extra: Record<string, unknown> = {}): Promise<{ client: TestClient, ready: Frame }> {
  const client = await TestClient.open(url)
  client.send({ type: 'auth', token, ref: 'a', ...extra })
  const ready = await Promise.race([client.type('ready'), client.closed.then((code) => { throw new Error(`closed with ${code} instead of ready`) })])
  return { client, ready }
}

/** The close code and reason of a socket that sends `auth` with this token. */
async function refused (url: string, token: string): Promise<[number, string]> {
  const client = await TestClient.open(url)
  const reason = new Promise<string>((resolve) => client.ws.on('close', (_code, why) => resolve(why.toString())))
  client.send({ type: 'auth', token })
  return [await client.closed, await reason]
}

for (const backend of BACKENDS) {
  test(`${backend}: a token logs in as its sub, with a full ready, and its claims reach the hooks`, async (t) => {
    const seen: unknown[] = []
    const { app, url } = await start(t, backend, {
      jwt: { secret: SECRET },
      canSubscribe: ({ claims, channel }) => {
        seen.push(claims?.rooms)
        return (claims?.rooms as string[] | undefined)?.includes(channel) === true
      },
      onClientPublish: ({ claims }) => { seen.push(claims?.sub) }
    })
    await app.comet.sendToUser('u1', 'queued', { n: 1 })
    const { client, ready } = await login(url, sign({ sub: 'u1', rooms: ['web_a'] }, { expiresIn: 60_000 }))
    assert.equal(ready.userId, 'u1')
    assert.equal(ready.queued, 1)
    assert.equal(ready.dropped, 0)
    assert.equal(ready.ref, 'a')
    assert.match(ready.last, /^\d+$/)
    await eventually(() => client.messages().length === 1, 'the queued message')
    client.send({ type: 'subscribe', channel: 'web_a', ref: 1 })
    client.send({ type: 'subscribe', channel: 'web_b', ref: 2 })
    assert.equal((await client.next((f) => f.ref === 1)).type, 'subscribed')
    assert.equal((await client.next((f) => f.ref === 2)).code, 'forbidden')
    client.send({ type: 'publish', channel: 'web_a', event: 'e', data: 1, ref: 3 })
    assert.equal((await client.next((f) => f.ref === 3)).type, 'published')
    assert.deepEqual(seen, [['web_a'], ['web_a'], 'u1'])
    await app.comet.sendToUser('u1', 'live', {})
    await eventually(() => client.messages().length === 2, 'a live message')
    await client.close()
  })

  test(`${backend}: expired, not yet valid, wrong issuer or audience, bad sub: closed with 4401`, async (t) => {
    const { url } = await start(t, backend, { jwt: { secret: SECRET, issuer: 'https://auth.example', audience: 'comet' }, authRateLimit: false })
    const ok = { iss: 'https://auth.example', aud: 'comet' }
    const now = Math.floor(Date.now() / 1000)
    assert.deepEqual(await refused(url, sign({ sub: 'u', ...ok, exp: now - 5 })), [4401, 'token expired'])
    assert.deepEqual(await refused(url, sign({ sub: 'u', ...ok, nbf: now + 60 })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, sign({ sub: 'u', aud: 'comet', iss: 'https://evil.example' })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, sign({ sub: 'u', iss: ok.iss, aud: 'other' })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, sign({ sub: 'u', aud: 'comet' })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, sign({ sub: 'no spaces allowed', ...ok })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, sign({ ...ok })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, createSigner({ key: 'another-secret' })({ sub: 'u', ...ok })), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, 'not.a.jwt'), [4401, 'authentication failed'])
    const { client, ready } = await login(url, sign({ sub: 'u', ...ok, aud: ['x', 'comet'], exp: now + 60 }))
    assert.equal(ready.userId, 'u')
    await client.close()
  })

  test(`${backend}: clockTolerance accepts a token that expired within it`, async (t) => {
    const { url } = await start(t, backend, { jwt: { secret: SECRET, clockTolerance: 30 } })
    const now = Math.floor(Date.now() / 1000)
    const { client } = await login(url, sign({ sub: 'u', exp: now - 10 }))
    await client.close()
    assert.deepEqual(await refused(url, sign({ sub: 'u', exp: now - 40 })), [4401, 'token expired'])
  })

  test(`${backend}: algorithm confusion and unsigned tokens are refused`, async (t) => {
    const { url } = await start(t, backend, { jwt: { publicKey: RSA_PEM }, authRateLimit: false })
    // HS256 signed with the public key's PEM as the HMAC secret: the classic confusion attack.
    const confused = createSigner({ key: RSA_PEM, algorithm: 'HS256' })({ sub: 'u' })
    assert.deepEqual(await refused(url, confused), [4401, 'authentication failed'])
    const unsigned = createSigner({ algorithm: 'none' })({ sub: 'u' })
    assert.deepEqual(await refused(url, unsigned), [4401, 'authentication failed'])
    // alg none with a signature made by the right key on another algorithm, header swapped.
    const real = createSigner({ key: RSA_PRIVATE.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'RS256' })({ sub: 'u' })
    const [, body, sig] = real.split('.')
    const noneHeader = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    assert.deepEqual(await refused(url, `${noneHeader}.${body}.${sig}`), [4401, 'authentication failed'])
    const { client, ready } = await login(url, real)
    assert.equal(ready.userId, 'u')
    await client.close()
  })

  test(`${backend}: a token expires while connected (4401 "token expired") unless refreshed`, async (t) => {
    const { app, url } = await start(t, backend, { jwt: { secret: SECRET } })
    const exp = () => Math.floor(Date.now() / 1000)
    const { client: kept } = await login(url, sign({ sub: 'r', exp: exp() + 2 }))
    const { client: lapsed } = await login(url, sign({ sub: 'r', exp: exp() + 2 }))
    const reason = new Promise<string>((resolve) => lapsed.ws.on('close', (_c, why) => resolve(why.toString())))
    // Bad refreshes get invalid_token with their ref, and the socket lives on until the old exp.
    kept.send({ type: 'refresh', token: sign({ sub: 'other', exp: exp() + 60 }), ref: 'x1' })
    kept.send({ type: 'refresh', token: sign({ sub: 'r', exp: exp() + 1 }), ref: 'x2' })
    kept.send({ type: 'refresh', token: createSigner({ key: 'wrong-secret' })({ sub: 'r', exp: exp() + 60 }), ref: 'x3' })
    kept.send({ type: 'refresh', token: 'garbage', ref: 'x4' })
    for (const ref of ['x1', 'x2', 'x3', 'x4']) {
      const frame = await kept.next((f) => f.ref === ref)
      assert.equal(frame.type, 'error')
      assert.equal(frame.code, 'invalid_token')
    }
    const next = exp() + 60
    kept.send({ type: 'refresh', token: sign({ sub: 'r', exp: next }), ref: 'ok' })
    const refreshed = await kept.next((f) => f.ref === 'ok')
    assert.deepEqual(refreshed, { type: 'refreshed', exp: next, ref: 'ok' })
    assert.equal(await lapsed.closed, 4401)
    assert.equal(await reason, 'token expired')
    // Past the first token's exp, the refreshed socket still receives.
    await new Promise((resolve) => setTimeout(resolve, 1500))
    assert.equal(kept.closeCode, null)
    await app.comet.sendToUser('r', 'still', {})
    await eventually(() => kept.messages().length === 1, 'a message after the old exp')
    await kept.close()
  })

  test(`${backend}: a refresh sent as the token expires: refreshed and kept, or closed, never both`, async (t) => {
    const { app, url } = await start(t, backend, { jwt: { secret: SECRET } })
    const exp = Math.floor(Date.now() / 1000) + 2
    const sockets: TestClient[] = []
    for (let i = 0; i < 4; i++) sockets.push((await login(url, sign({ sub: 'race', exp }))).client)
    // Each sends its refresh a little earlier or later around the expiry.
    const offsets = [-60, -20, 0, 20]
    await new Promise((resolve) => setTimeout(resolve, exp * 1000 - Date.now() - 100))
    await Promise.all(sockets.map(async (client, i) => {
      await new Promise((resolve) => setTimeout(resolve, 100 + offsets[i]!))
      client.send({ type: 'refresh', token: sign({ sub: 'race', exp: exp + 60 }), ref: 'r' })
    }))
    await new Promise((resolve) => setTimeout(resolve, 1000))
    await app.comet.sendToUser('race', 'after', {})
    await new Promise((resolve) => setTimeout(resolve, 300))
    for (const client of sockets) {
      const refreshed = client.frames.some((f) => f.type === 'refreshed')
      if (refreshed) {
        assert.equal(client.closeCode, null, 'refreshed, then still open')
        assert.equal(client.messages().length, 1)
        await client.close()
      } else {
        assert.equal(client.closeCode, 4401, 'not refreshed: closed at the expiry')
      }
    }
  })

  test(`${backend}: revokeAuth closes token sockets and refuses tokens issued before it`, async (t) => {
    const { app, url } = await start(t, backend, { jwt: { secret: SECRET }, authRateLimit: false })
    const old = sign({ sub: 'v' })
    const { client } = await login(url, old)
    await app.comet.revokeAuth('v')
    assert.equal(await client.closed, 4401)
    assert.deepEqual(await refused(url, old), [4401, 'authentication failed'])
    assert.deepEqual(await refused(url, sign({ sub: 'v' }, { noTimestamp: true })), [4401, 'authentication failed'])
    // A token issued after the revocation logs in; other users are untouched.
    const fresh = sign({ sub: 'v' }, { clockTimestamp: Date.now() + 1000 })
    const { client: again } = await login(url, fresh)
    const { client: other } = await login(url, sign({ sub: 'w' }))
    // A refresh with a token from before the revocation is refused too.
    again.send({ type: 'refresh', token: sign({ sub: 'v', exp: Math.floor(Date.now() / 1000) + 600 }), ref: 'r' })
    assert.equal((await again.next((f) => f.ref === 'r')).code, 'invalid_token')
    await Promise.all([again.close(), other.close()])
  })

  test(`${backend}: tokens from @fastify/jwt's app.jwt.sign are accepted`, async (t) => {
    const { url } = await start(t, backend, { jwt: { secret: SECRET } })
    const signer = Fastify()
    await signer.register(fastifyJwt, { secret: SECRET })
    await signer.ready()
    const { client, ready } = await login(url, signer.jwt.sign({ sub: 'fj' }, { expiresIn: '5m' }))
    assert.equal(ready.userId, 'fj')
    await client.close()
    await signer.close()
  })

  test(`${backend}: the upgrade hook: a user id, anonymous fallback, 401, 403, 500`, async (t) => {
    const lines: string[] = []
    const { app, url } = await start(t, backend, {
      authenticate: async (request) => {
        const who = request.headers['x-user']
        if (who === 'deny') throw Object.assign(new Error('no session'), { statusCode: 401 })
        if (who === 'forbid') throw Object.assign(new Error('banned'), { statusCode: 403 })
        if (who === 'crash') throw new Error('database down')
        if (who === 'bad') return 'sess=s3cr3t-session-value with spaces'
        if (who === 'number') return 42
        return typeof who === 'string' ? who : null
      }
    }, lines)
    await app.comet.registerAuth('h', HASH)
    await app.comet.sendToUser('alice', 'queued', {})
    const alice = await TestClient.open(url, { headers: { 'x-user': 'alice' } })
    alice.send({ type: 'auth', ref: 1 })
    const ready = await alice.type('ready')
    assert.equal(ready.userId, 'alice')
    assert.equal(ready.queued, 1)
    assert.match(ready.last, /^\d+$/)
    await eventually(() => alice.messages().length === 1, 'the queued message')
    // Resuming: `since` in the credential-less frame.
    const resumed = await TestClient.open(url, { headers: { 'x-user': 'alice' } })
    resumed.send({ type: 'auth', since: alice.messages()[0]!.id })
    assert.equal((await resumed.type('ready')).recovered, true)
    const numbered = await TestClient.open(url, { headers: { 'x-user': 'number' } })
    numbered.send({ type: 'auth' })
    assert.equal((await numbered.type('ready')).userId, '42')
    // No user: the frame's credentials decide, as without the hook.
    const anonymous = await TestClient.open(url)
    anonymous.send({ type: 'auth' })
    assert.equal((await anonymous.type('ready')).userId, null)
    const hashed = await TestClient.open(url)
    assert.equal((await hashed.auth('h', HASH)).userId, 'h')
    for (const [who, status] of [['deny', 401], ['forbid', 403], ['crash', 500], ['bad', 500]] as const) {
      const client = new TestClient(url, { headers: { 'x-user': who } })
      const response = await new Promise<number>((resolve) => client.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
      assert.equal(response, status, who)
    }
    assert.ok(lines.some((l) => l.includes('database down')))
    assert.ok(lines.some((l) => l.includes('authenticate must return a user id')))
    assert.ok(!lines.some((l) => l.includes('s3cr3t')), 'what the hook returned is not logged')
    // revokeAuth closes hook sockets too.
    await app.comet.revokeAuth('alice')
    assert.equal(await alice.closed, 4401)
    await Promise.all([numbered.close(), anonymous.close(), hashed.close()])
  })

  test(`${backend}: failed token logins count against the failed-auth limit`, async (t) => {
    const { url } = await start(t, backend, { jwt: { secret: SECRET }, authRateLimit: { max: 3, window: 60_000 } })
    for (let i = 0; i < 3; i++) assert.equal((await refused(url, createSigner({ key: 'guess' })({ sub: 'u' })))[0], 4401)
    const blocked = new TestClient(url)
    const status = await new Promise<number>((resolve) => blocked.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0)))
    assert.equal(status, 429)
  })
}

test('revocation reaches every instance and holds cluster-wide, for revocationTtl', async (t) => {
  const { a, b, redis } = await startPair(t, { jwt: { secret: SECRET, revocationTtl: 3000 }, authRateLimit: false })
  const old = sign({ sub: 'x' })
  const { client: onA } = await login(a.url, old)
  const { client: onB } = await login(b.url, old)
  await a.app.comet.revokeAuth('x')
  assert.deepEqual(await Promise.all([onA.closed, onB.closed]), [4401, 4401])
  assert.deepEqual(await refused(b.url, old), [4401, 'authentication failed'])
  const { client } = await login(b.url, sign({ sub: 'x' }, { clockTimestamp: Date.now() + 1000 }))
  await client.close()
  const check = new Redis(redis!.port, '127.0.0.1')
  const ttl = await check.pttl('comet:{u:x}:revoked')
  await check.quit()
  assert.ok(ttl > 0 && ttl <= 3000, `revocation kept for revocationTtl, got ${ttl}`)
  // Once revocationTtl has passed, the revocation is forgotten.
  await eventually(async () => {
    const c = await TestClient.open(a.url)
    c.send({ type: 'auth', token: old })
    const code = await Promise.race([c.type('ready').then(() => 0), c.closed])
    await c.close()
    return code === 0
  }, 'the old token accepted after revocationTtl', 6000)
})

test('a token socket on one instance expires and refreshes while messages come from the other', async (t) => {
  const { a, b } = await startPair(t, { jwt: { secret: SECRET } })
  const { client } = await login(a.url, sign({ sub: 'p', exp: Math.floor(Date.now() / 1000) + 2 }))
  client.send({ type: 'refresh', token: sign({ sub: 'p', exp: Math.floor(Date.now() / 1000) + 60 }), ref: 1 })
  assert.equal((await client.next((f) => f.ref === 1)).type, 'refreshed')
  await new Promise((resolve) => setTimeout(resolve, 2500))
  await b.app.comet.sendToUser('p', 'e', {})
  await eventually(() => client.messages().length === 1, 'the message from the other instance')
  assert.equal(client.closeCode, null)
  await client.close()
})

test('jwt and authenticate options are checked: FST_ERR_COMET_OPTIONS says what', async () => {
  const bad: Array<[CometOptions, RegExp]> = [
    [{ jwt: {} }, /exactly one of secret, publicKey or key/],
    [{ jwt: { secret: SECRET, publicKey: RSA_PEM } }, /exactly one/],
    [{ jwt: { secret: SECRET, algorithms: ['none'] } }, /none/],
    [{ jwt: { secret: SECRET, algorithms: ['RS256'] } }, /HMAC tokens only/],
    [{ jwt: { publicKey: RSA_PEM, algorithms: ['HS256'] } }, /cannot verify HMAC/],
    [{ jwt: { secret: RSA_PEM } }, /looks like a PEM key/],
    [{ jwt: { publicKey: 'not a key' } }, /PEM public key/],
    [{ jwt: { publicKey: RSA_PEM, algorithms: ['ES256'] } }, /jwt:/],
    [{ jwt: { secret: SECRET, clockTolerance: -1 } }, /clockTolerance/],
    [{ jwt: { secret: SECRET, revocationTtl: 0 } }, /revocationTtl/],
    [{ jwt: { secret: SECRET, issuer: 5 } as never }, /issuer/],
    [{ jwt: { secret: SECRET, secrets: 1 } as never }, /unknown option "jwt.secrets"/],
    [{ jwt: { key: 'x' } as never }, /jwt.key must be a function/],
    [{ authenticate: 'yes' } as never, /authenticate must be a function/]
  ]
  for (const [options, message] of bad) {
    const app = Fastify()
    await assert.rejects(async () => { await app.register(comet, options).ready() }, (err: Error & { code?: string }) => {
      assert.equal(err.code, 'FST_ERR_COMET_OPTIONS')
      assert.match(err.message, message)
      return true
    })
    await app.close()
  }
})

test('a key function (JWKS) picks the key by kid, and never lets a public key verify HMAC', async (t) => {
  const { url } = await start(t, 'memory', {
    jwt: { key: async (header) => { if (header.kid !== 'k1') throw new Error('unknown kid'); return RSA_PUBLIC } },
    authRateLimit: false
  })
  const rs = createSigner({ key: RSA_PRIVATE.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'RS256', kid: 'k1' })
  const { client } = await login(url, rs({ sub: 'j' }))
  await client.close()
  assert.deepEqual(await refused(url, createSigner({ key: RSA_PEM, algorithm: 'HS256', kid: 'k1' })({ sub: 'j' })), [4401, 'authentication failed'])
  assert.deepEqual(await refused(url, createSigner({ key: RSA_PRIVATE.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'RS256', kid: 'k2' })({ sub: 'j' })), [4401, 'authentication failed'])
})

test('JWKS with get-jwks, as docs/security.md shows it', async (t) => {
  const issuer = Fastify()
  issuer.get('/.well-known/jwks.json', async () => ({ keys: [{ ...RSA_PUBLIC.export({ format: 'jwk' }), kid: 'k1', alg: 'RS256', use: 'sig' }] }))
  await issuer.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => issuer.close())
  const domain = `http://127.0.0.1:${(issuer.server.address() as { port: number }).port}/`
  const getJwks = buildGetJwks({ issuersWhitelist: [domain] })
  const { url } = await start(t, 'memory', {
    jwt: { key: async (header) => await getJwks.getPublicKey({ kid: header.kid as string, alg: header.alg as string, domain }), issuer: domain },
    authRateLimit: false
  })
  const rs = createSigner({ key: RSA_PRIVATE.export({ type: 'pkcs8', format: 'pem' }) as string, algorithm: 'RS256', kid: 'k1', iss: domain })
  const { client, ready } = await login(url, rs({ sub: 'jw' }))
  assert.equal(ready.userId, 'jw')
  await client.close()
  assert.deepEqual(await refused(url, createSigner({ key: RSA_PEM, algorithm: 'HS256', kid: 'k1', iss: domain })({ sub: 'jw' })), [4401, 'authentication failed'])
})

test('the upgrade hook with @fastify/jwt, as the README shows it: request.jwtVerify() then request.user.sub', async (t) => {
  const app = Fastify()
  await app.register(fastifyJwt, { secret: SECRET })
  await app.register(comet, {
    authenticate: async (request) => {
      await request.jwtVerify()
      return (request.user as { sub: string }).sub
    }
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/comet`
  const client = await TestClient.open(url, { headers: { authorization: `Bearer ${app.jwt.sign({ sub: 'bearer' })}` } })
  client.send({ type: 'auth' })
  assert.equal((await client.type('ready')).userId, 'bearer')
  await client.close()
  for (const headers of [{}, { authorization: 'Bearer nonsense' }] as Array<Record<string, string>>) {
    const refusedUpgrade = new TestClient(url, { headers })
    assert.equal(await new Promise((resolve) => refusedUpgrade.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode))), 401)
  }
})

test('tokens never reach the log', async (t) => {
  const lines: string[] = []
  const { url } = await start(t, 'memory', { jwt: { secret: SECRET }, authRateLimit: false }, lines)
  const token = createSigner({ key: 'wrong' })({ sub: 'u' })
  await refused(url, token)
  const { client } = await login(url, sign({ sub: 'u', exp: Math.floor(Date.now() / 1000) + 60 }))
  client.send({ type: 'refresh', token, ref: 1 })
  await client.next((f) => f.ref === 1)
  await client.close()
  assert.ok(lines.length > 0)
  assert.ok(!lines.some((l) => l.includes(token.split('.')[2]!)))
})

test('bad tokens count against the address\'s failed-auth budget like bad hashes: past it a valid token is refused, and upgrades get 429', async (t) => {
  const { url } = await start(t, 'redis', { jwt: { secret: SECRET }, authRateLimit: { max: 3, window: 60_000 } })
  const forged = createSigner({ key: 'not-the-secret-of-this-server!!!' })({ sub: 'u1' })
  // Opened before the failures, so only the auth frame can refuse it.
  const late = await TestClient.open(url)
  t.after(() => late.close())
  for (let i = 0; i < 3; i++) assert.deepEqual(await refused(url, forged), [4401, 'authentication failed'])
  late.send({ type: 'auth', token: sign({ sub: 'u1' }, { expiresIn: 60_000 }) })
  assert.equal(await late.closed, 4429, 'a valid token from the address is refused once its budget is spent')
  await assert.rejects(TestClient.open(url), /429/, 'and its upgrades get 429')
})

test('a revocation made from a worker (CometEmitter, no jwt option) refuses older tokens too', async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const { url } = await start(t, 'memory', { redis: redis.url, jwt: { secret: SECRET } })
  const emitter = new CometEmitter({ redis: redis.url })
  t.after(() => emitter.close())
  const older = sign({ sub: 'u9', iat: Math.floor(Date.now() / 1000) - 10 }, { expiresIn: 60_000 })
  await emitter.revokeAuth('u9')
  assert.deepEqual(await refused(url, older), [4401, 'authentication failed'])
})

/** An app on memory or a fresh redis-server, closed after the test; its log lines go to `lines` (trace). */
async function start (t: TestContext, backend: 'memory' | 'redis', options: CometOptions, lines?: string[]): Promise<{ app: FastifyInstance, url: string }> {
  const redis = backend === 'redis' ? await startRedis() : null
  const stream = new Writable({ write (chunk: Buffer, _enc, done) { lines?.push(chunk.toString()); done() } })
  const app = Fastify({ logger: lines === undefined ? false : { level: 'trace', stream } })
  await app.register(comet, { ...(redis === null ? {} : { redis: redis.url }), ...options })
  t.after(async () => {
    await app.close()
    await redis?.stop()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/comet` }
}
