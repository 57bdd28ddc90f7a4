// Server events (docs/events.md): each once across the cluster, in order per user, retried when a listener
// throws, taken over when the handling instance dies; on memory, and on two instances sharing a Redis or a
// Redis Cluster.
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import type { ServerEvent, ServerEventType, CometOptions } from '../lib/index.ts'
import { startApp, HASH } from './helpers/app.ts'
import type { TestApp } from './helpers/app.ts'
import { eventually } from './helpers/client.ts'
import { member, request } from './helpers/channels.ts'
import { spawnInstance } from './helpers/instance.ts'
import { startRedis } from './helpers/redis.ts'
import { chosen, dropPrefix, sharedCluster, testPrefix } from './helpers/backends.ts'
import { moveSlot, ownerOf, slotOf } from './helpers/cluster.ts'
import { PARTITION_TAGS } from '../lib/events/lua.ts'
import { sample } from './operations/helpers.ts'

const HEARTBEAT = 500
const GRACE = 300
const TYPES: ServerEventType[] = ['online', 'offline', 'join', 'leave', 'occupied', 'vacated', 'dropped']

interface Seen { on: string, event: ServerEvent }

/** Listens for every type on each app; `seen` gets each event with the name of the app that got it. */
function collect (apps: Array<[string, TestApp]>): Seen[] {
  const seen: Seen[] = []
  for (const [name, { app }] of apps) {
    for (const type of TYPES) app.comet.on(type, (event) => { seen.push({ on: name, event }) })
  }
  return seen
}

const OPTIONS: CometOptions = { heartbeatInterval: HEARTBEAT, presenceGrace: GRACE, authRateLimit: false, offlineQueue: { maxMessages: 1 } }

type Shared = 'redis' | 'cluster'
type Kind = 'memory' | Shared
const SHARED = chosen<Shared>(['redis', 'cluster'])

/** Where instances share their state: a fresh Redis, or a prefix of their own on the file's Cluster. */
async function backend (kind: Shared): Promise<{ options: CometOptions, env: Record<string, string>, stop: () => Promise<void> }> {
  if (kind === 'redis') {
    const redis = await startRedis()
    return { options: { redis: redis.url }, env: { REDIS_URL: redis.url }, stop: async () => await redis.stop() }
  }
  const cluster = await sharedCluster()
  const keyPrefix = testPrefix()
  return {
    options: { redis: { cluster: cluster.startup }, keyPrefix },
    env: { REDIS_CLUSTER: JSON.stringify(cluster.startup), KEY_PREFIX: keyPrefix },
    stop: async () => { dropPrefix(cluster, keyPrefix) }
  }
}

/** One app on memory, or two sharing a Redis or a Cluster. */
async function apps (t: TestContext, kind: Kind, extra: CometOptions = {}): Promise<Array<[string, TestApp]>> {
  if (kind === 'memory') {
    const a = await startApp({ ...OPTIONS, ...extra })
    t.after(() => a.app.close())
    return [['a', a]]
  }
  const { options, stop } = await backend(kind)
  const a = await startApp({ ...OPTIONS, ...extra, ...options })
  const b = await startApp({ ...OPTIONS, ...extra, ...options })
  t.after(async () => {
    await Promise.all([a.app.close(), b.app.close()])
    await stop()
  })
  return [['a', a], ['b', b]]
}

const of = (seen: Seen[], type: ServerEventType): ServerEvent[] => seen.filter((s) => s.event.type === type).map((s) => s.event)

for (const kind of ['memory', ...SHARED] as const) {
  test(`${kind}: each event type once across the instances, with its fields`, async (t) => {
    const all = await apps(t, kind)
    const seen = collect(all)
    const a = all[0]![1]
    const b = all.at(-1)![1]
    await a.app.comet.registerAuth('ann', HASH)
    // Give the listening instances a moment to take their share of the streams.
    await sleep(HEARTBEAT)

    const start = Date.now()
    const phone = await member(a.url, 'ann', ['track_room'])
    const laptop = await member(b.url, 'ann', ['track_room'])
    await eventually(() => of(seen, 'join').length === 1 && of(seen, 'occupied').length === 1 && of(seen, 'online').length === 1, 'online, occupied, join')
    await request(phone, { type: 'unsubscribe', channel: 'track_room' })
    await request(laptop, { type: 'unsubscribe', channel: 'track_room' })
    await phone.close()
    const lastClose = Date.now()
    await laptop.close()
    await eventually(() => of(seen, 'offline').length === 1 && of(seen, 'leave').length === 1 && of(seen, 'vacated').length === 1, 'offline, leave, vacated', 5000)

    await a.app.comet.sendToUser('bob', 'e', 1)
    await b.app.comet.sendToUser('bob', 'e', 2)
    await b.app.comet.sendToUser('bob', 'e', 3)
    await eventually(() => of(seen, 'dropped').length === 2, 'two drops')
    await sleep(2 * HEARTBEAT)

    for (const type of TYPES) assert.equal(of(seen, type).length, type === 'dropped' ? 2 : 1, `${type} once: ${JSON.stringify(seen)}`)
    const ids = seen.map((s) => s.event.id)
    assert.equal(new Set(ids).size, ids.length, 'ids are unique')
    const [online, offline, join, leave, occupied, vacated] = TYPES.map((type) => of(seen, type)[0]) as ServerEvent[]
    assert.deepEqual(Object.keys(online!).sort(), ['at', 'id', 'type', 'userId'])
    assert.equal((online as { userId: string }).userId, 'ann')
    assert.deepEqual(Object.keys(offline!).sort(), ['at', 'id', 'lastSeen', 'type', 'userId'])
    const lastSeen = Date.parse((offline as { lastSeen: string }).lastSeen)
    assert.ok(lastSeen >= lastClose - 50 && lastSeen <= Date.now(), 'lastSeen is when the last device left')
    assert.ok(Date.parse(offline!.at) - lastSeen >= GRACE - 50, 'offline only once the grace period is over')
    for (const event of [join, leave]) assert.deepEqual({ ...event, id: '', at: '' }, { id: '', at: '', type: event!.type, channel: 'track_room', userId: 'ann' })
    for (const event of [occupied, vacated]) assert.deepEqual({ ...event, id: '', at: '' }, { id: '', at: '', type: event!.type, channel: 'track_room' })
    assert.deepEqual(of(seen, 'dropped').map((e) => [(e as { userId: string }).userId, (e as { count: number }).count]), [['bob', 1], ['bob', 1]])
    for (const { event } of seen) {
      assert.ok(Date.parse(event.at) >= start - 1000 && Date.parse(event.at) <= Date.now(), `at is an ISO time: ${event.at}`)
      assert.equal(new Date(event.at).toISOString(), event.at)
    }
    // A user's events reach the listeners in order.
    assert.deepEqual(seen.filter((s) => s.event.type === 'online' || s.event.type === 'offline').map((s) => s.event.type), ['online', 'offline'])
    assert.deepEqual(seen.filter((s) => ['join', 'leave', 'occupied', 'vacated'].includes(s.event.type)).map((s) => s.event.type), ['occupied', 'join', 'vacated', 'leave'])
  })

  test(`${kind}: a reload inside the grace period sends neither offline nor a second online`, async (t) => {
    const all = await apps(t, kind)
    const seen = collect(all)
    const first = all[0]![1]
    const other = all.at(-1)![1]
    await first.app.comet.registerAuth('cat', HASH)
    await sleep(HEARTBEAT)
    const before = await member(first.url, 'cat')
    await eventually(() => of(seen, 'online').length === 1, 'online')
    const left = Date.now()
    await before.close()
    const after = await member(other.url, 'cat')
    const reload = Date.now() - left
    // Well past the grace period and three heartbeats: nothing more comes.
    await sleep(GRACE + 3 * HEARTBEAT)
    assert.deepEqual(seen.map((s) => s.event.type), ['online'], JSON.stringify({ reload, after: after.closeCode, seen }))
    await after.close()
    await eventually(() => of(seen, 'offline').length === 1, 'offline once the last device left for good')
    await sleep(2 * HEARTBEAT)
    assert.deepEqual(seen.map((s) => s.event.type), ['online', 'offline'])
  })

  test(`${kind}: a listener that throws gets the event again with backoff, 5 times at most, then a log line and a count; the user's next event waits`, async (t) => {
    const lines: string[] = []
    const stream = { write: (line: string) => { lines.push(line) } }
    const shared = kind === 'memory' ? null : await backend(kind)
    const app = Fastify({ logger: { level: 'warn', stream } })
    await app.register((await import('../lib/index.ts')).default, { ...OPTIONS, ...shared?.options, metrics: true })
    await app.listen({ port: 0, host: '127.0.0.1' })
    t.after(async () => {
      await app.close()
      await shared?.stop()
    })
    const url = `ws://127.0.0.1:${(app.server.address() as { port: number }).port}/comet`
    const calls: Array<[string, number]> = []
    app.comet.on('online', (event) => {
      calls.push(['online', Date.now()])
      throw new Error(`cannot handle ${event.userId}`)
    })
    app.comet.on('offline', () => { calls.push(['offline', Date.now()]) })
    await app.comet.registerAuth('dan', HASH)
    await sleep(HEARTBEAT)
    const device = await member(url, 'dan')
    await device.close()
    await eventually(() => calls.some(([type]) => type === 'offline'), 'offline after the failed online', 10_000)
    await sleep(500)
    assert.deepEqual(calls.map(([type]) => type), ['online', 'online', 'online', 'online', 'online', 'offline'])
    const gaps = calls.slice(1, 5).map(([, at], n) => at - calls[n]![1])
    assert.ok(gaps.every((gap, n) => gap >= 50 * 2 ** n), `backoff grows: ${gaps.join(', ')}`)
    const given = lines.filter((l) => l.includes('event listener failed every attempt'))
    assert.equal(given.length, 1)
    assert.match(given[0]!, /cannot handle dan/)
    assert.equal(sample((await app.inject('/comet/metrics')).body, 'comet_event_listener_given_up_total'), 1)
  })
}

test('on and off check their arguments; off stops the listener', async (t) => {
  const { app } = await startApp(OPTIONS, false)
  t.after(() => app.close())
  assert.throws(() => app.comet.on('nope' as 'online', () => {}), { code: 'FST_ERR_COMET_EVENTS' })
  assert.throws(() => app.comet.on('online', 'x' as unknown as () => void), { code: 'FST_ERR_COMET_EVENTS' })
  const seen: string[] = []
  const listener = (event: ServerEvent): void => { seen.push(event.type) }
  app.comet.on('dropped', listener)
  await app.comet.sendToUser('eve', 'e', 1)
  await app.comet.sendToUser('eve', 'e', 2)
  await eventually(() => seen.length === 1, 'one drop')
  app.comet.off('dropped', listener)
  await app.comet.sendToUser('eve', 'e', 3)
  await sleep(50)
  assert.deepEqual(seen, ['dropped'])
})

for (const kind of SHARED) {
  test(`${kind}: a SIGKILLed instance's users go offline once, within 3 heartbeats plus the grace`, async (t) => {
    const shared = await backend(kind)
    const a = await startApp({ ...OPTIONS, ...shared.options })
    const child = await spawnInstance('', HEARTBEAT, 0, { ...shared.env, GRACE: String(GRACE) })
    t.after(async () => {
      child.child.kill('SIGKILL')
      await a.app.close()
      await shared.stop()
    })
    const seen = collect([['a', a]])
    await a.app.comet.registerAuth('fay', HASH)
    await sleep(HEARTBEAT)
    const device = await member(child.url, 'fay', ['track_hall'])
    await eventually(() => of(seen, 'online').length === 1 && of(seen, 'join').length === 1, 'online and join')

    child.child.kill('SIGKILL')
    await once(child.child, 'exit')
    const killedAt = Date.now()
    await device.closed
    await eventually(() => of(seen, 'offline').length === 1, 'offline after the lapse', 3 * HEARTBEAT + GRACE + 3000)
    const offlineAt = Date.now()
    assert.ok(offlineAt - killedAt <= 3 * HEARTBEAT + GRACE + 2000, `offline ${offlineAt - killedAt} ms after the kill`)
    // The channel's events partition may have been the killed instance's: A takes it over once its lease
    // and its membership lapse (3 heartbeats each), then sweeps the channel at its next beat.
    await eventually(() => of(seen, 'leave').length === 1 && of(seen, 'vacated').length === 1, 'leave and vacated after the lapse', 10_000)
    await sleep(2 * HEARTBEAT)
    assert.deepEqual(TYPES.map((type) => of(seen, type).length), [1, 1, 1, 1, 1, 1, 0])
    const offline = of(seen, 'offline')[0] as { lastSeen: string }
    assert.ok(Date.parse(offline.lastSeen) <= killedAt, 'last seen before the kill')
  })

  test(`${kind}: the instance handling an event is killed before its listener settles: another instance gets the event`, async (t) => {
    const shared = await backend(kind)
    // The child alone listens at first: it takes every stream, gets the online and hangs in its listener.
    const child = await spawnInstance('', HEARTBEAT, 0, { ...shared.env, HANG_ON: 'online' })
    const a = await startApp({ ...OPTIONS, ...shared.options })
    t.after(async () => {
      child.child.kill('SIGKILL')
      await a.app.close()
      await shared.stop()
    })
    const printed: ServerEvent[] = []
    child.lines.on('line', (line) => printed.push(JSON.parse(line) as ServerEvent))
    await a.app.comet.registerAuth('gus', HASH)
    await sleep(HEARTBEAT)
    const device = await member(a.url, 'gus')
    t.after(() => device.close())
    await eventually(() => printed.length === 1, 'the child got the online', 5000)

    const got: ServerEvent[] = []
    a.app.comet.on('online', (event) => { got.push(event) })
    await sleep(2 * HEARTBEAT)
    assert.deepEqual(got, [], 'not while the child handles it')
    child.child.kill('SIGKILL')
    await once(child.child, 'exit')
    await eventually(() => got.length === 1, 'the survivor gets the event', 3 * HEARTBEAT + 5000)
    assert.deepEqual(got[0], printed[0], 'the same event, the same id')
    await sleep(2 * HEARTBEAT)
    assert.equal(got.length, 1, JSON.stringify(got))
  })

  test(`${kind}: each event goes to an instance with a listener for its type: A listens for online only, B for offline only`, async (t) => {
    const all = await apps(t, kind)
    const [[, a], [, b]] = all as [[string, TestApp], [string, TestApp]]
    const seen: Seen[] = []
    a.app.comet.on('online', (event) => { seen.push({ on: 'a', event }) })
    b.app.comet.on('offline', (event) => { seen.push({ on: 'b', event }) })
    // Users enough that both instances hold partitions with events of the type they do not listen for.
    const users = Array.from({ length: 16 }, (_, n) => `p${n}`)
    for (const user of users) await a.app.comet.registerAuth(user, HASH)
    await sleep(HEARTBEAT)
    const devices = await Promise.all(users.map(async (user, n) => await member((n % 2 === 0 ? a : b).url, user)))
    await eventually(() => of(seen, 'online').length === users.length, 'every online')
    await Promise.all(devices.map(async (device) => await device.close()))
    await eventually(() => of(seen, 'offline').length === users.length, 'every offline', 5000)
    await sleep(2 * HEARTBEAT)
    for (const [type, on] of [['online', 'a'], ['offline', 'b']] as const) {
      const got = seen.filter((s) => s.event.type === type)
      assert.ok(got.every((s) => s.on === on), `${type} only on ${on}`)
      assert.deepEqual(got.map((s) => (s.event as { userId: string }).userId).sort(), [...users].sort(), `each ${type} once`)
    }
    assert.equal(seen.length, 2 * users.length, 'nothing else')
  })
}

test('redis: without listeners or webhooks nothing is recorded', async (t) => {
  const redis = await startRedis()
  const a = await startApp({ ...OPTIONS, redis: redis.url })
  t.after(async () => {
    await a.app.close()
    await redis.stop()
  })
  await a.app.comet.registerAuth('hal', HASH)
  const device = await member(a.url, 'hal', ['track_x'])
  await device.close()
  await a.app.comet.sendToUser('ivy', 'e', 1)
  await a.app.comet.sendToUser('ivy', 'e', 2)
  await sleep(GRACE + 2 * HEARTBEAT)
  const { Redis } = await import('ioredis')
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  assert.deepEqual(await admin.keys('comet:{e*'), [])
})

test('redis: the streams keep only events some instance has not finished with', async (t) => {
  const redis = await startRedis()
  const a = await startApp({ ...OPTIONS, redis: redis.url })
  t.after(async () => {
    await a.app.close()
    await redis.stop()
  })
  let handled = 0
  a.app.comet.on('dropped', () => { handled++ })
  await sleep(HEARTBEAT)
  for (let n = 0; n < 200; n++) await a.app.comet.sendToUser(`u${n % 40}`, 'e', n)
  await eventually(() => handled === 160, 'every drop handled')
  const { Redis } = await import('ioredis')
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  const length = async (): Promise<number> => {
    let total = 0
    for (const tag of PARTITION_TAGS) total += await admin.xlen(`comet:{${tag}}:s`)
    return total
  }
  // At most the last entry read of each stream stays.
  await eventually(async () => await length() <= 16, 'trimmed', 3000)
})

if (SHARED.includes('cluster')) {
  test('cluster: a master serving no partition of the events is named in an error log', async (t) => {
    const cluster = await sharedCluster()
    const [from, to] = cluster.masters().map((m) => m.port) as [number, number]
    const moved = PARTITION_TAGS.map((tag) => slotOf(tag)).filter((slot) => ownerOf(cluster, slot) === from)
    for (const slot of moved) await moveSlot(cluster, slot, to)
    const lines: string[] = []
    const keyPrefix = testPrefix()
    const app = Fastify({ logger: { level: 'error', stream: { write: (line: string) => { lines.push(line) } } } })
    t.after(async () => {
      await app.close()
      dropPrefix(cluster, keyPrefix)
      for (const slot of moved) await moveSlot(cluster, slot, from)
    })
    await app.register((await import('../lib/index.ts')).default, { ...OPTIONS, redis: { cluster: cluster.startup }, keyPrefix })
    await app.ready()
    app.comet.on('online', () => {})
    await eventually(() => lines.some((line) => line.includes('serve no server-events partition')), 'the error')
    const logged = JSON.parse(lines.find((line) => line.includes('serve no server-events partition'))!) as { masters: string[] }
    assert.deepEqual(logged.masters, [`127.0.0.1:${from}`])
  })
}
