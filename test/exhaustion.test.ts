import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import WebSocket from 'ws'
import { Redis } from 'ioredis'
import { appOn } from './helpers/backends.ts'
import { HASH, startApp } from './helpers/app.ts'
import { startRedis } from './helpers/redis.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { request } from './helpers/channels.ts'
import { MemoryChannels } from '../lib/store/memory/channels.ts'
import { MAX_ACTIVE_CHANNELS } from '../lib/store/channels.ts'
import type { CometOptions } from '../lib/index.ts'

const fixture = (name: string): string => new URL(`./fixtures/${name}`, import.meta.url).pathname
const MB = 1 << 20

/** Starts test/fixtures/server.ts in a child process, SIGKILLed after the test. */
async function childServer (t: TestContext, options: CometOptions, seed = '0x0'): Promise<{ url: string, rss: (ms?: number) => Promise<number>, logged: (msg: string) => Promise<void> }> {
  const child = spawn(process.execPath, ['--import', 'tsx', fixture('server.ts')], {
    env: { ...process.env, OPTIONS: JSON.stringify(options), SEED: seed },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.after(() => { child.kill('SIGKILL') })
  const messages: string[] = []
  const lines = createInterface({ input: child.stdout as Readable })
  const port = await new Promise<number>((resolve) => lines.on('line', (line) => {
    const entry = JSON.parse(line) as { port?: number, msg?: string }
    if (entry.port !== undefined) resolve(entry.port)
    if (entry.msg !== undefined) messages.push(entry.msg)
  }))
  return {
    url: `ws://127.0.0.1:${port}/comet`,
    rss: async (ms = 0) => {
      // The most the server holds while it works through what it was sent.
      let most = 0
      for (const until = Date.now() + ms; ;) {
        most = Math.max(most, ((await (await fetch(`http://127.0.0.1:${port}/rss`)).json()) as { rss: number }).rss)
        if (Date.now() >= until) return most
        await new Promise((resolve) => setTimeout(resolve, 250))
      }
    },
    logged: async (msg) => await eventually(() => messages.includes(msg), `the server logs "${msg}"`, 15_000)
  }
}

/** A socket that never reads what the server sends (its TCP receive side is paused). */
async function deaf (url: string): Promise<WebSocket> {
  const ws = new WebSocket(url)
  ws.on('error', () => {})
  await once(ws, 'open')
  ws.send(JSON.stringify({ type: 'auth' }))
  await once(ws, 'message')
  ;(ws as unknown as { _socket: { pause (): void } })._socket.pause()
  return ws
}

/** Sends `frame` `batch` times every few ms for `ms`, as long as the client's own buffer allows. */
async function pour (ws: WebSocket, frame: string, ms: number, batch = 50): Promise<number> {
  let sent = 0
  const until = Date.now() + ms
  while (Date.now() < until && ws.readyState === WebSocket.OPEN) {
    if (ws.bufferedAmount < MB) for (let i = 0; i < batch; i++, sent++) ws.send(frame)
    await new Promise((resolve) => setTimeout(resolve, 20))
  }
  return sent
}

test('replies count against maxBufferedBytes: a client that asks and never reads cannot grow the server (RSS)', async (t) => {
  // The frame limit is off: only the outbound cap and backpressure stand between these loops and memory.
  const server = await childServer(t, { frameRate: false, history: { news: { size: 10, ttl: 600_000 } } }, '10x60000')
  const before = await server.rss()
  const pinger = await deaf(server.url)
  t.after(() => pinger.terminate())
  await pour(pinger, JSON.stringify({ type: 'ping', ref: 'r'.repeat(64) }), 2500, 2000)
  const afterPings = await server.rss(3000)
  const reader = await deaf(server.url)
  t.after(() => reader.terminate())
  // Under the 128-frame inbox limit, as an attacker would pace them: each reply is a page of ~60 KB.
  const asked = await pour(reader, JSON.stringify({ type: 'history', channel: 'news' }), 3000, 4)
  const afterHistory = await server.rss(3000)
  t.diagnostic(`RSS ${(before / MB).toFixed(0)} MB, after pings +${((afterPings - before) / MB).toFixed(0)} MB, after history +${((afterHistory - afterPings) / MB).toFixed(0)} MB more (${asked} asked), closed: ${String(reader.readyState === WebSocket.CLOSED)}`)
  assert.ok(asked >= 400, `asked ${asked} times`)
  assert.ok(afterPings - before < 48 * MB, `pings grew the server by ${((afterPings - before) / MB).toFixed(0)} MB`)
  assert.ok(afterHistory - afterPings < 32 * MB, `history requests grew the server by ${((afterHistory - afterPings) / MB).toFixed(0)} MB`)
  // The server stopped reading it; as it reads nothing of what it is owed, it is cut as too slow (4413,
  // which a client that reads nothing cannot see).
  await server.logged('comet: closing a client that stopped reading')
})

test('history replies are paged under maxPayload; the client follows the pages', async (t) => {
  const { app, url } = await appOn(t, 'memory', { maxPayload: 4096, history: { news: { size: 20, ttl: 600_000 } } })
  for (let i = 0; i < 20; i++) await app.comet.publish('news', 'e', { i, pad: 'p'.repeat(900) })
  const client = await TestClient.open(url)
  t.after(() => client.close())
  await (client.send({ type: 'auth' }), client.type('ready'))
  const ids: string[] = []
  let since: string | undefined
  for (let page = 0; page < 20; page++) {
    const raw = new Promise<Buffer>((resolve) => client.ws.once('message', (data: Buffer) => resolve(data)))
    client.send(since === undefined ? { type: 'history', channel: 'news', ref: page } : { type: 'history', channel: 'news', since, ref: page })
    const bytes = await raw
    assert.ok(bytes.length <= 4096, `a page of ${bytes.length} bytes`)
    const reply = JSON.parse(bytes.toString()) as { recovered: boolean, more?: boolean, messages: Array<{ id: string }> }
    assert.equal(reply.recovered, true)
    assert.ok(reply.messages.length > 0)
    ids.push(...reply.messages.map((m) => m.id))
    since = ids.at(-1)
    if (reply.more !== true) break
    assert.ok(ids.length < 20, 'more: true only while messages are left')
  }
  assert.equal(ids.length, 20)
  assert.equal(new Set(ids).size, 20)
  // A message that could not fit in a page is refused at publish.
  await assert.rejects(app.comet.publish('news', 'e', 'x'.repeat(3950)), { code: 'FST_ERR_COMET_PAYLOAD_TOO_LARGE' })

  const { CometClient } = await import('../lib/client/index.ts')
  const comet = new CometClient({ url, WebSocket, window: null })
  t.after(() => comet.close())
  const all = await comet.history<{ i: number }>('news')
  assert.equal(all.recovered, true)
  assert.deepEqual(all.messages.map((m) => m.data.i), Array.from({ length: 20 }, (_, i) => i))
  const tail = await comet.history<{ i: number }>('news', all.messages[4]?.id)
  assert.deepEqual(tail.messages.map((m) => m.data.i), Array.from({ length: 15 }, (_, i) => i + 5))
})

test('a junk-frame flood is limited per connection (rate_limited once, then 1008); a bystander is answered in time', async (t) => {
  const { app, url } = await appOn(t, 'memory')
  await app.comet.registerAuth('calm', HASH)
  const flood = spawn(process.execPath, ['--import', 'tsx', fixture('flood.ts')], { env: { ...process.env, URL: url, MS: '4000', SOCKETS: '4' }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => { flood.kill('SIGKILL') })
  const lines = createInterface({ input: flood.stdout as Readable })[Symbol.asyncIterator]()
  await lines.next()
  await new Promise((resolve) => setTimeout(resolve, 500))
  const started = Date.now()
  const bystander = await TestClient.open(url, { localAddress: '127.0.0.2' })
  t.after(() => bystander.close())
  await bystander.auth('calm', HASH)
  bystander.send({ type: 'ping', ref: 1 })
  await bystander.type('pong', 10_000)
  const took = Date.now() - started
  t.diagnostic(`a bystander's connect + auth + ping took ${took} ms during the flood`)
  const line = (await lines.next()).value as string
  const { errors, code } = JSON.parse(line) as { errors: number, code: number }
  assert.ok(took < 5000, `connect + auth + ping took ${took} ms during the flood`)
  assert.equal(code, 1008)
  assert.ok(errors <= 110, `the flooder got ${errors} error frames`)
})

test('frameRate: frames past the burst get rate_limited once and are dropped; publishRate stays tighter for publishes', async (t) => {
  const { url } = await appOn(t, 'memory', { frameRate: { rate: 1, burst: 10 }, publishRate: 1, publishBurst: 2 })
  const client = await TestClient.open(url)
  t.after(() => client.close())
  await (client.send({ type: 'auth' }), client.type('ready'))
  for (let i = 0; i < 3; i++) client.send({ type: 'publish', channel: 'web_x', event: 'e', data: i, ref: `p${i}` })
  for (let i = 0; i < 12; i++) client.send({ type: 'ping', ref: i })
  // auth, 3 publishes and 6 pings make the burst of 10; the other 6 pings are dropped.
  await client.next((f) => f.type === 'error' && f.code === 'rate_limited' && f.ref === undefined)
  await client.next((f) => f.type === 'pong' && f.ref === 5)
  await new Promise((resolve) => setTimeout(resolve, 200))
  const limited = client.frames.find((f) => f.ref === 'p2')
  assert.equal(limited?.code, 'rate_limited', 'the third publish is over publishRate')
  assert.deepEqual(client.frames.filter((f) => f.type === 'pong').map((f) => f.ref), [0, 1, 2, 3, 4, 5])
  assert.equal(client.frames.filter((f) => f.code === 'rate_limited' && f.ref === undefined).length, 1)
  assert.equal(client.closeCode, null, 'a few frames over the rate do not close the connection')
})

test('channels() bookkeeping is pruned in the heartbeat and bounded, in Redis and in memory', async (t) => {
  const prefix = 'prune:'
  const server = await startRedis()
  const { app, url } = await startApp({ redis: server.url, heartbeatInterval: 500, keyPrefix: prefix, frameRate: false })
  t.after(async () => {
    await app.close()
    await server.stop()
  })
  const keeper = await TestClient.open(url)
  t.after(() => keeper.close())
  await (keeper.send({ type: 'auth' }), keeper.type('ready'))
  await request(keeper, { type: 'subscribe', channel: 'kept' })
  const churn = await TestClient.open(url)
  t.after(() => churn.close())
  await (churn.send({ type: 'auth' }), churn.type('ready'))
  // Names subscribed once and left, without pause: each subscription keeps the registry key alive.
  let names = 0
  for (const until = Date.now() + 6000; Date.now() < until; names++) {
    await request(churn, { type: 'subscribe', channel: `once_${names}` })
    await request(churn, { type: 'unsubscribe', channel: `once_${names}` })
  }
  const redis = new Redis(server.url)
  t.after(() => redis.disconnect())
  // Those of the first two seconds lapsed (a second after they were left) seconds ago.
  const old = Array.from({ length: Math.floor(names / 3) }, (_, i) => `once_${i}`)
  const stale = (await redis.zmscore(`${prefix}channels`, ...old)).filter((score) => score !== null).length
  assert.equal(stale, 0, `the registry still holds ${stale} of the ${old.length} names left over 4 s ago (${await redis.zcard(`${prefix}channels`)} in all)`)
  await eventually(async () => await redis.zcard(`${prefix}channels`) === 1, 'the registry keeps only the subscribed channel', 10_000)
  assert.deepEqual((await app.comet.channels()).map((c) => c.channel), ['kept'])

  const memory = new MemoryChannels('"}', () => {})
  await memory.markActive(Array.from({ length: MAX_ACTIVE_CHANNELS + 10 }, (_, i) => `c${i}`), 600_000)
  assert.equal((await memory.active()).length, MAX_ACTIVE_CHANNELS)
  await memory.markActive(['brief'], 1)
  await new Promise((resolve) => setTimeout(resolve, 10))
  await memory.pruneActive()
  const left = await memory.active()
  assert.equal(left.length, MAX_ACTIVE_CHANNELS - 1)
  assert.ok(!left.includes('brief') && !left.includes('c10') && left.includes('c11'))
})

test('maxAnonymousPerAddress: past it the upgrade gets 429; allowAnonymous false closes a credential-less auth with 4401', async (t) => {
  const { app, url } = await appOn(t, 'memory', { maxAnonymousPerAddress: 3 })
  await app.comet.registerAuth('u', HASH)
  const upgrade = async (localAddress = '127.0.0.1'): Promise<TestClient | number> => {
    const client = new TestClient(url, { localAddress })
    return await new Promise((resolve) => {
      client.ws.on('open', () => resolve(client))
      client.ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    })
  }
  const open = [await upgrade(), await upgrade(), await upgrade()] as TestClient[]
  t.after(() => { for (const c of open) c.ws.terminate() })
  ;(open[0] as TestClient).send({ type: 'auth' })
  await (open[0] as TestClient).type('ready')
  assert.equal(await upgrade(), 429, 'pending and anonymous sockets count')
  const other = await upgrade('127.0.0.3')
  assert.ok(other instanceof TestClient, 'other addresses are not affected')
  other.ws.terminate()
  await (open[1] as TestClient).auth('u', HASH)
  const next = await upgrade()
  assert.ok(next instanceof TestClient, 'a socket that authenticated as a user frees its place')
  next.ws.terminate()

  const strict = await appOn(t, 'memory', { allowAnonymous: false })
  const anon = await TestClient.open(strict.url)
  anon.send({ type: 'auth' })
  assert.equal(await anon.closed, 4401)
})

test('members replies are paged under maxPayload too; the client follows the pages', async (t) => {
  const { app, url } = await appOn(t, 'memory', { maxPayload: 256 })
  const ids = Array.from({ length: 40 }, (_, i) => `member${String(i).padStart(2, '0')}`)
  for (const id of ids) {
    await app.comet.registerAuth(id, HASH)
    const client = await TestClient.open(url)
    t.after(() => client.close())
    await client.auth(id, HASH)
    await request(client, { type: 'subscribe', channel: 'room' })
  }
  const asker = await TestClient.open(url)
  t.after(() => asker.close())
  await (asker.send({ type: 'auth' }), asker.type('ready'))
  const raw = new Promise<Buffer>((resolve) => asker.ws.once('message', (data: Buffer) => resolve(data)))
  asker.send({ type: 'members', channel: 'room', ref: 1 })
  const first = await raw
  assert.ok(first.length <= 256, `a page of ${first.length} bytes`)
  const page = JSON.parse(first.toString()) as { more?: boolean, members: string[] }
  assert.equal(page.more, true)
  const rest = await request(asker, { type: 'members', channel: 'room', after: page.members.at(-1) })
  assert.deepEqual(rest['members'].slice(0, 1), [ids[page.members.length]])

  const { CometClient } = await import('../lib/client/index.ts')
  const comet = new CometClient({ url, WebSocket, window: null })
  t.after(() => comet.close())
  assert.deepEqual(await comet.members('room'), ids)
})
