// Deliveries per second and Redis egress per message: one Redis vs a 3-master Redis Cluster.
//   node --import tsx test/load/cluster-load.ts [users=200] [messages=20000] [inflight=256]
// Two instances in this process: A sends, B holds one WebSocket device per user. Not part of npm test.
import { Cluster, Redis } from 'ioredis'
import WebSocket from 'ws'
import { HASH, startApp } from '../helpers/app.ts'
import { startCluster } from '../helpers/cluster.ts'
import { startRedis } from '../helpers/redis.ts'
import type { CometOptions } from '../../lib/index.ts'

const USERS = Number(process.argv[2] ?? 200)
const MESSAGES = Number(process.argv[3] ?? 20_000)
const INFLIGHT = Number(process.argv[4] ?? 256)
const PAYLOAD = 'x'.repeat(100)

function stat (info: string, name: string): number {
  return Number(new RegExp(`${name}:(\\d+)`).exec(info)?.[1] ?? 0)
}

async function run (label: string, redis: CometOptions['redis'], nodes: Redis[]): Promise<void> {
  const a = await startApp({ redis, offlineQueue: false, resume: false })
  const b = await startApp({ redis, offlineQueue: false, resume: false })
  let delivered = 0
  let allDelivered: () => void = () => {}
  const done = new Promise<void>((resolve) => { allDelivered = resolve })
  const sockets: WebSocket[] = []
  for (let u = 0; u < USERS; u++) {
    await a.app.comet.registerAuth(`load${u}`, HASH)
    const ws = new WebSocket(b.url)
    await new Promise((resolve) => ws.once('open', resolve))
    ws.send(JSON.stringify({ type: 'auth', userId: `load${u}`, hash: HASH }))
    await new Promise((resolve) => ws.once('message', resolve))
    ws.on('message', () => { if (++delivered === MESSAGES) allDelivered() })
    sockets.push(ws)
  }
  const output = async (): Promise<number[]> => await Promise.all(nodes.map(async (n) => {
    const info = await n.info('stats')
    return stat(info, 'total_net_output_bytes') - stat(info, 'total_net_repl_output_bytes')
  }))
  const before = await output()
  const started = process.hrtime.bigint()
  let next = 0
  await Promise.all(Array.from({ length: INFLIGHT }, async () => {
    while (next < MESSAGES) {
      const i = next++
      await a.app.comet.sendToUser(`load${i % USERS}`, 'm', PAYLOAD)
    }
  }))
  await done
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  const after = await output()
  const perNode = after.map((v, i) => Math.round((v - (before[i] ?? 0)) / MESSAGES))
  console.log(`${label}: ${MESSAGES} messages to ${USERS} users in ${seconds.toFixed(2)} s = ${Math.round(MESSAGES / seconds)} deliveries/s; ` +
    `Redis output per message (bytes, replication excluded) per master: ${perNode.join(' / ')}`)
  for (const ws of sockets) ws.terminate()
  await Promise.all([a.app.close(), b.app.close()])
}

const one = await startRedis()
const oneClient = new Redis(one.url)
await run('one Redis', one.url, [oneClient])
oneClient.disconnect()
await one.stop()

const cluster = await startCluster()
const masters = cluster.masters().map((m) => new Redis(m.port))
await run('3-master cluster, sharded pub/sub', { cluster: cluster.startup }, masters)

// For comparison: classic PUBLISH on the same cluster reaches every node over the cluster bus.
const raw = new Cluster(cluster.startup)
const bus = async (): Promise<number[]> => await Promise.all(cluster.nodes.map(async ({ port }) => stat(cluster.cli(port, 'cluster', 'info'), 'cluster_stats_messages_publish_received')))
const shardBus = async (): Promise<number[]> => await Promise.all(cluster.nodes.map(async ({ port }) => stat(cluster.cli(port, 'cluster', 'info'), 'cluster_stats_messages_publishshard_received')))
const [b0, s0] = [await bus(), await shardBus()]
for (let i = 0; i < 1000; i++) await raw.publish(`classic{u:${i}}`, PAYLOAD)
for (let i = 0; i < 1000; i++) await raw.spublish(`sharded{u:${i}}`, PAYLOAD)
const [b1, s1] = [await bus(), await shardBus()]
console.log(`1000 classic PUBLISH: bus messages received per node ${b1.map((v, i) => v - (b0[i] ?? 0)).join(' / ')} (every node, ${b1.reduce((n, v, i) => n + v - (b0[i] ?? 0), 0)} in all)`)
console.log(`1000 SPUBLISH: bus messages received per node ${s1.map((v, i) => v - (s0[i] ?? 0)).join(' / ')} (only the replica of each shard, ${s1.reduce((n, v, i) => n + v - (s0[i] ?? 0), 0)} in all)`)
raw.disconnect()
for (const m of masters) m.disconnect()
await cluster.stop()
