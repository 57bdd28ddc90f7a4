import assert from 'node:assert/strict'
import { test } from 'node:test'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { createSigner } from 'fast-jwt'
import WebSocket from 'ws'
import comet from '../../lib/index.ts'
import type { CometOptions } from '../../lib/index.ts'
import { CometClient } from '../../lib/client/index.ts'
import type { CometClientOptions, CometStatus, StatusInfo } from '../../lib/client/index.ts'
import { HASH } from '../helpers/app.ts'

// The client's credential functions (token, hash) against the real plugin, in Node.

const SECRET = 'a-test-secret-of-thirty-two-bytes!'

/** A token for `sub` that expires `seconds` after now. */
function token (sub: string, seconds: number): string {
  return createSigner({ key: SECRET, expiresIn: seconds * 1000 })({ sub })
}

async function listen (t: { after: (fn: () => Promise<void>) => void }, options: CometOptions): Promise<{ app: FastifyInstance, url: string }> {
  const app = Fastify({ logger: false })
  await app.register(comet, options)
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(async () => { await app.close() })
  return { app, url: `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/comet` }
}

function client (url: string, options: Partial<CometClientOptions>) {
  const statuses: Array<[CometStatus, StatusInfo]> = []
  const c = new CometClient({ url, WebSocket, reconnect: { baseDelay: 50, maxDelay: 200 }, window: null, ...options } as CometClientOptions)
  c.on('status', (status, info) => statuses.push([status, info]))
  return { comet: c, statuses }
}

async function until (what: string, check: () => boolean, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

test('a token function keeps a socket with 3 s tokens open: refreshed before each expiry, never dropped', async (t) => {
  const { app, url } = await listen(t, { jwt: { secret: SECRET } })
  let asked = 0
  const { comet: c, statuses } = client(url, { token: async () => { asked++; return token('t1', 3) } })
  t.after(() => c.close())
  const got: string[] = []
  c.subscribe('msg', (m) => got.push(m.event))
  await until('open', () => c.status === 'open')
  await new Promise((resolve) => setTimeout(resolve, 6500))
  await app.comet.sendToUser('t1', 'late', {})
  await until('the message', () => got.length === 1)
  assert.deepEqual(statuses.map(([s]) => s), ['open'], 'one connection, never dropped')
  assert.ok(asked >= 3, `asked for a new token before each expiry, asked ${asked}`)
})

test('a 4401 asks the function once more and retries; a second 4401 in a row is auth-failed', async (t) => {
  const { app, url } = await listen(t, { jwt: { secret: SECRET }, authRateLimit: false })
  const given: string[] = []
  let good = true
  const { comet: c, statuses } = client(url, {
    token: () => {
      const next = good ? token('t2', 600) : createSigner({ key: 'wrong' })({ sub: 't2' })
      given.push(next)
      return next
    }
  })
  t.after(() => c.close())
  await until('open', () => c.status === 'open')
  // Revoked: the function gives a token issued after the revocation, and the client is back.
  await new Promise((resolve) => setTimeout(resolve, 20))
  await app.comet.revokeAuth('t2')
  await until('reconnected', () => statuses.filter(([s]) => s === 'open').length === 2)
  assert.equal(statuses[1]?.[1].code, 4401)
  // Now every token is refused: one retry, then auth-failed, no loop.
  good = false
  const before = given.length
  await app.comet.revokeAuth('t2')
  await until('auth-failed', () => c.status === 'auth-failed')
  assert.equal(given.length - before, 1, 'asked exactly once more')
  await new Promise((resolve) => setTimeout(resolve, 300))
  assert.equal(given.length - before, 1, 'no loop')
})

test('a hash function fetches the rotated hash after a 4401 instead of stopping', async (t) => {
  const { app, url } = await listen(t, {})
  let current = HASH
  await app.comet.registerAuth('h1', current)
  const { comet: c, statuses } = client(url, { userId: 'h1', hash: async () => current })
  t.after(() => c.close())
  await until('open', () => c.status === 'open')
  await app.comet.revokeAuth('h1')
  current = 'a-rotated-hash-after-revocation'
  await app.comet.registerAuth('h1', current)
  await until('reopened', () => statuses.filter(([s]) => s === 'open').length === 2)
  assert.equal(c.status, 'open')
})

test('a fixed token or hash still ends in auth-failed at the first 4401', async (t) => {
  const { url } = await listen(t, { jwt: { secret: SECRET }, authRateLimit: false })
  const { comet: c } = client(url, { token: createSigner({ key: 'wrong' })({ sub: 'x' }) })
  t.after(() => c.close())
  await until('auth-failed', () => c.status === 'auth-failed')
})

test('behind the upgrade hook the page passes no credentials', async (t) => {
  const { url } = await listen(t, { authenticate: async (request) => request.headers['x-user'] as string | undefined ?? null })
  class Authed extends WebSocket {
    constructor (address: string, protocols?: string | string[]) { super(address, protocols, { headers: { 'x-user': 'hooked' } }) }
  }
  const { comet: c } = client(url, { WebSocket: Authed as unknown as CometClientOptions['WebSocket'] })
  t.after(() => c.close())
  const ready: Array<{ userId: string | null }> = []
  c.on('ready', (info) => ready.push(info))
  await until('ready', () => ready.length === 1)
  assert.equal(ready[0]?.userId, 'hooked')
  assert.equal(c.userId, undefined)
})

test('credential options are checked', () => {
  assert.throws(() => new CometClient({ url: 'ws://x/comet', token: 'a.b.c', userId: '1', WebSocket } as CometClientOptions), /token cannot be combined/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet', token: '', WebSocket } as CometClientOptions), /token must be/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet', userId: '1', WebSocket } as CometClientOptions), /hash is required/)
})
