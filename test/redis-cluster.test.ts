import { once } from 'node:events'
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis } from 'ioredis'
import { HASH, startApp } from './helpers/app.ts'
import { dropPrefix, sharedCluster, testPrefix } from './helpers/backends.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { moveSlot, ownerOf, slotOf } from './helpers/cluster.ts'
import type { RedisCluster } from './helpers/cluster.ts'
import { startPair } from './helpers/pair.ts'
import { DeafeningProxy } from './helpers/proxy.ts'
import { shardSubscriber, stopSlotRefresh } from '../lib/internals.ts'
import { quit } from '../lib/store/redis/client.ts'

/** `perShard` user ids on every master, so a test crosses every shard. */
function usersOnEveryShard (cluster: RedisCluster, perShard: number): Map<number, string[]> {
  const byPort = new Map(cluster.masters().map((m) => [m.port, [] as string[]]))
  for (let n = 0; [...byPort.values()].some((ids) => ids.length < perShard); n++) {
    const ids = byPort.get(ownerOf(cluster, slotOf(`{u:s${n}}`)))
    if (ids !== undefined && ids.length < perShard) ids.push(`s${n}`)
  }
  return byPort
}

function stat (info: string, name: string): number {
  return Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0)
}

test('users on every shard get their messages on both instances; each user\'s channel is subscribed only on its own shard', async (t) => {
  const cluster = await sharedCluster()
  const prefix = testPrefix()
  const { a, b } = await startPair(t, { keyPrefix: prefix }, 'cluster')
  const users = usersOnEveryShard(cluster, 2)
  const clients: Array<[string, TestClient]> = []
  for (const [, ids] of users) {
    for (const [i, id] of ids.entries()) {
      await a.app.comet.registerAuth(id, HASH)
      const client = await TestClient.open((i % 2 === 0 ? a : b).url)
      await client.auth(id, HASH)
      clients.push([id, client])
    }
  }
  t.after(() => Promise.all(clients.map(([, c]) => c.close())))
  for (const [id] of clients) {
    const sent = await b.app.comet.sendToUser(id, 'hello', id)
    assert.equal(sent.queued, false)
  }
  for (const [id, client] of clients) assert.equal((await client.type('message')).data, id)

  // SHARDNUMSUB on every master: the owner counts the one instance listening; the others know nothing of it.
  for (const [port, ids] of users) {
    for (const id of ids) {
      for (const { port: other } of cluster.masters()) {
        const [, count] = cluster.cli(other, 'pubsub', 'shardnumsub', `${prefix}{u:${id}}`).trim().split('\n')
        assert.equal(Number(count), other === port ? 1 : 0, `${id} on ${other} (owner ${port})`)
      }
    }
  }
})

test('a message travels only to the shard of its user: no pub/sub broadcast on the cluster bus, no output on other masters', async (t) => {
  const cluster = await sharedCluster()
  const prefix = testPrefix()
  const { a, b } = await startPair(t, { keyPrefix: prefix }, 'cluster')
  const [[owner, [user]]] = [...usersOnEveryShard(cluster, 1)] as [[number, [string]]]
  await a.app.comet.registerAuth(user, HASH)
  const client = await TestClient.open(b.url)
  t.after(() => client.close())
  await client.auth(user, HASH)
  await a.app.comet.sendToUser(user, 'warm', 0)
  await client.type('message')

  // Large enough that a connection's first contact with a master (an INFO ready check, ~5 KB) in the
  // window stays far below what one broadcast copy of the stream would be.
  const payload = 'x'.repeat(4000)
  const COUNT = 200
  const before = new Map(cluster.masters().map((m) => [m.port, cluster.cli(m.port, 'info', 'stats') + cluster.cli(m.port, 'cluster', 'info')]))
  for (let i = 0; i < COUNT; i++) await a.app.comet.sendToUser(user, 'big', payload)
  await eventually(() => client.messages().length === COUNT + 1, 'all delivered')
  for (const { port } of cluster.masters()) {
    const after = cluster.cli(port, 'info', 'stats') + cluster.cli(port, 'cluster', 'info')
    const was = before.get(port) ?? ''
    const delta = (name: string): number => stat(after, name) - stat(was, name)
    assert.equal(delta('cluster_stats_messages_publish_sent'), 0, 'no classic PUBLISH crosses the cluster bus')
    assert.equal(delta('cluster_stats_messages_publish_received'), 0)
    const out = delta('total_net_output_bytes') - delta('total_net_repl_output_bytes')
    if (port === owner) {
      assert.ok(out > COUNT * payload.length, `the owner sends every message to the listening instance (${out} bytes)`)
    } else {
      assert.ok(out < COUNT * payload.length / 20, `another master sends (almost) nothing: ${out} bytes for ${COUNT} messages of ${payload.length} bytes`)
    }
  }
})

test('a slot moved to another master during a message stream: devices that stay and devices that resume lose nothing', async (t) => {
  const cluster = await sharedCluster()
  const prefix = testPrefix()
  const { a, b } = await startPair(t, { keyPrefix: prefix, heartbeatInterval: 200 }, 'cluster')
  const users = usersOnEveryShard(cluster, 1)
  assert.equal(users.size, 3)
  const [[from, [moving]], [to]] = [...users] as [[number, [string]], [number, [string]]]
  const slot = slotOf(`{u:${moving}}`)
  await a.app.comet.registerAuth(moving, HASH)
  const stays = await TestClient.open(b.url)
  const leaves = await TestClient.open(a.url)
  t.after(() => Promise.all([stays.close(), leaves.close()]))
  await stays.auth(moving, HASH)
  await leaves.auth(moving, HASH)

  const sent: string[] = []
  const stream = { on: true }
  const sending = (async () => {
    for (let i = 0; stream.on || i < 20; i++) {
      sent.push((await a.app.comet.sendToUser(moving, 'n', i)).id)
      await sleep(2)
    }
  })()
  await eventually(() => leaves.messages().length >= 10, 'the stream flows')
  const since = leaves.messages().at(-1)?.id as string
  await leaves.close()
  assert.equal(ownerOf(cluster, slot), from)
  await moveSlot(cluster, slot, to)
  stream.on = false
  await sending

  const back = await TestClient.open(a.url)
  t.after(() => back.close())
  const ready = await back.auth(moving, HASH, { since })
  assert.equal(ready.recovered, true)
  const expected = sent.slice(sent.indexOf(since) + 1)
  await eventually(() => back.messages().length >= expected.length, 'the resumed device got everything after since', 10_000)
  assert.deepEqual(back.messages().map((m) => m.id), expected, 'in order, once')
  await eventually(() => stays.messages().length >= sent.length, 'the device that stayed got everything', 10_000)
  assert.deepEqual([...new Set(stays.messages().map((m) => m.id))].sort(), [...sent].sort(), 'nothing lost')
  assert.equal(stays.messages().length, sent.length, 'nothing twice')
  assert.equal(stays.closeCode, null)

  // Live routing works on the new owner.
  const live = await a.app.comet.sendToUser(moving, 'n', 'live')
  await eventually(() => stays.messages().some((m) => m.id === live.id), 'live on the new owner')
  assert.equal(cluster.cli(to, 'pubsub', 'shardnumsub', `${prefix}{u:${moving}}`).trim().split('\n')[1], '2', 'A and B listen on the new owner')
  assert.equal(cluster.cli(from, 'pubsub', 'shardnumsub', `${prefix}{u:${moving}}`).trim().split('\n')[1], '0', 'and no longer on the old one')
})

test('a Cluster instance passed in is used and left open; the option must not turn sharded pub/sub off', async (t) => {
  const cluster = await sharedCluster()
  const prefix = testPrefix()
  const client = new Cluster(cluster.startup)
  t.after(() => client.disconnect())
  await assert.rejects(startApp({ redis: client, shardedPubSub: false }), { code: 'FST_ERR_COMET_OPTIONS' })
  await assert.rejects(startApp({ redis: { cluster: [] } }), { code: 'FST_ERR_COMET_OPTIONS' })
  const { app, url } = await startApp({ redis: client, keyPrefix: prefix })
  t.after(() => dropPrefix(cluster, prefix))
  await app.comet.registerAuth('mine', HASH)
  const device = await TestClient.open(url)
  await device.auth('mine', HASH)
  const sent = await app.comet.sendToUser('mine', 'e', 1)
  assert.equal((await device.type('message')).id, sent.id)
  await device.close()
  await app.close()
  assert.equal(client.status, 'ready', 'not closed by the plugin')
  assert.equal(await client.get(`${prefix}{u:mine}:auth`) !== null, true)
})

test('sharded pub/sub on one Redis 7 (shardedPubSub: true) routes the same way', async (t) => {
  const { startRedis } = await import('./helpers/redis.ts')
  const redis = await startRedis()
  const { app, url } = await startApp({ redis: redis.url, shardedPubSub: true })
  t.after(async () => {
    await app.close()
    await redis.stop()
  })
  await app.comet.registerAuth('one', HASH)
  const device = await TestClient.open(url)
  t.after(() => device.close())
  await device.auth('one', HASH)
  const admin = new Redis(redis.url)
  t.after(() => admin.disconnect())
  assert.deepEqual(await admin.call('PUBSUB', 'SHARDNUMSUB', 'comet:{u:one}'), ['comet:{u:one}', 1])
  assert.deepEqual(await admin.pubsub('NUMSUB', 'comet:{u:one}'), ['comet:{u:one}', 0], 'no classic subscription')
  await admin.config('RESETSTAT')
  const sent = await app.comet.sendToUser('one', 'e', 1)
  assert.equal((await device.type('message')).id, sent.id)
  const stats = await admin.info('commandstats')
  assert.match(stats, /cmdstat_spublish:calls=1,/, 'SPUBLISH inside the script')
  assert.doesNotMatch(stats, /cmdstat_publish:/)
})

test('a shard subscriber that silently stops receiving is found by its shard\'s probe and replaced; its sockets catch up, staying open', async (t) => {
  const cluster = await sharedCluster()
  const prefix = testPrefix()
  const [[port, [user]], [other]] = [...usersOnEveryShard(cluster, 1)] as [[number, [string]], [number, [string]]]
  // The app reaches the user's master through a proxy that can drop what Redis sends to subscribers.
  const proxy = new DeafeningProxy(port)
  await proxy.listen()
  const { app, url } = await startApp({
    keyPrefix: prefix,
    heartbeatInterval: 200,
    redis: { cluster: [{ host: '127.0.0.1', port: other }], options: { natMap: { [`127.0.0.1:${port}`]: { host: '127.0.0.1', port: proxy.port } } } }
  })
  t.after(async () => {
    await app.close()
    await proxy.close()
    dropPrefix(cluster, prefix)
  })
  await app.comet.registerAuth(user, HASH)
  const client = await TestClient.open(url)
  t.after(() => client.close())
  await client.auth(user, HASH)
  await app.comet.sendToUser(user, 'e', 'before')
  await client.type('message')

  assert.equal(proxy.deafenSubscribers(), 1, 'one subscriber connection to that shard')
  const during = await app.comet.sendToUser(user, 'e', 'during')
  assert.equal(during.queued, false, 'Redis believes it was delivered')
  await sleep(50)
  assert.equal(client.messages().length, 1, 'and it was not: the shard subscriber is deaf')

  await eventually(() => proxy.deafOpen() === 0, 'the probe found the deaf connection and closed it', 5000)
  await eventually(() => client.messages().some((m) => m.id === during.id), 'caught up after the shard subscriber was replaced', 5000)
  const after = await app.comet.sendToUser(user, 'e', 'after')
  await eventually(() => client.messages().some((m) => m.id === after.id), 'live delivery again')
  assert.deepEqual(client.messages().map((m) => m.data), ['before', 'during', 'after'])
  assert.equal(client.closeCode, null, 'the socket stayed open throughout')
})

test('ioredis keeps a Cluster\'s sharded subscribers where lib/internals.ts finds them', async (t) => {
  const cluster = await sharedCluster()
  const sub = new Cluster(cluster.startup, { shardedSubscribers: true })
  t.after(() => sub.disconnect())
  const channel = `${testPrefix()}{internals}`
  await sub.ssubscribe(channel)
  const node = sub.slots[slotOf(channel)]?.[0]
  assert.ok(node !== undefined, 'the slot map names the master')
  const conn = shardSubscriber(sub, node)
  assert.ok(conn instanceof Redis, 'the group keeps a connection per master')
  assert.equal(conn.status, 'ready')
})

test('a slot-map refresh in flight at quit re-arms ioredis\' refresh timer for good; quit() clears it (lib/internals.ts)', async () => {
  const cluster = await sharedCluster()
  const timerOf = (c: Cluster): unknown => (c as unknown as { slotsTimer: unknown }).slotsTimer
  /** Closes the Cluster as its timer starts a refresh, so the refresh is still asking a node when it ends. */
  const closeDuringRefresh = async (close: (c: Cluster) => void): Promise<Cluster> => {
    const c = new Cluster(cluster.startup, { slotsRefreshInterval: 20 })
    await once(c, 'ready')
    const refresh = c.refreshSlotsCache.bind(c)
    let armed = true
    c.refreshSlotsCache = (callback) => {
      refresh(callback)
      // The timer's refresh is the one with a callback (its next round).
      if (callback !== undefined && armed) {
        armed = false
        close(c)
      }
    }
    await eventually(() => !armed, 'a timer-driven refresh')
    await sleep(300)
    return c
  }
  // Plain ioredis: the timer is armed again after the disconnect and would keep the process alive.
  // (If this fails, ioredis fixed it: stopSlotRefresh can go.)
  const plain = await closeDuringRefresh((c) => c.disconnect())
  assert.notEqual(timerOf(plain), null, 'ioredis re-armed its timer after disconnect')
  stopSlotRefresh(plain)
  assert.equal(timerOf(plain), null)
  // Our quit(), as the store shuts down.
  const ours = await closeDuringRefresh((c) => { quit(c).catch(() => {}) })
  const left = timerOf(ours)
  stopSlotRefresh(ours)
  assert.equal(left, null, 'nothing left to keep the process alive')
})
