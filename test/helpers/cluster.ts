import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import assert from 'node:assert/strict'
import { slotOf } from '../../lib/store/redis/slots.ts'
import { eventually } from './client.ts'
import { freePort } from './redis.ts'

export interface ClusterNodeProcess {
  port: number
  process: ChildProcess
}

export interface RedisCluster {
  nodes: ClusterNodeProcess[]
  /** Startup nodes for ioredis `Cluster` / the plugin's `{ cluster: [...] }` option. */
  startup: Array<{ host: string, port: number }>
  /** Runs redis-cli against one node and returns its output. */
  cli (port: number, ...args: string[]): string
  /** Ports of the current masters, each with the slot ranges it serves. */
  masters (): Array<{ port: number, slots: Array<[number, number]> }>
  /** SIGKILLs one node (a crash); the cluster fails over to its replica. */
  kill (port: number): Promise<void>
  /** Resolves when every live node reports cluster_state:ok and sees `masters` masters serving all slots. */
  settled (timeout?: number): Promise<void>
  /** Removes the temp dir with the nodes' config files (stop() does it too). */
  removeDir (): void
  stop (): Promise<void>
}

/**
 * A throw-away Redis Cluster: 3 masters and 3 replicas on free loopback ports, config files in a temp dir
 * removed by stop(). A short cluster-node-timeout keeps failover tests quick.
 */
export async function startCluster (): Promise<RedisCluster> {
  const dir = mkdtempSync(join(tmpdir(), 'comet-cluster-'))
  const nodes: ClusterNodeProcess[] = []
  const cli = (port: number, ...args: string[]): string => {
    const out = spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8', timeout: 10_000 })
    return `${out.stdout ?? ''}${out.stderr ?? ''}`
  }
  const live = (): ClusterNodeProcess[] => nodes.filter((n) => n.process.exitCode === null && n.process.signalCode === null)
  const cluster: RedisCluster = {
    nodes,
    startup: [],
    cli,
    masters () {
      for (const node of live()) {
        const out = cli(node.port, 'cluster', 'nodes')
        if (!out.includes('myself')) continue
        const masters: Array<{ port: number, slots: Array<[number, number]> }> = []
        for (const line of out.trim().split('\n')) {
          const fields = line.split(' ')
          if (!fields[2]?.includes('master') || fields[2].includes('fail')) continue
          const port = Number(fields[1]?.split('@')[0]?.split(':')[1])
          const slots = fields.slice(8).filter((s) => /^\d/.test(s)).map((s) => {
            const [a, b] = s.split('-').map(Number)
            return [a, b ?? a] as [number, number]
          })
          if (slots.length > 0) masters.push({ port, slots })
        }
        return masters
      }
      return []
    },
    async kill (port) {
      const node = nodes.find((n) => n.port === port)
      if (node === undefined || node.process.exitCode !== null || node.process.signalCode !== null) return
      node.process.ref()
      node.process.kill('SIGKILL')
      await once(node.process, 'exit')
    },
    async settled (timeout = 20_000) {
      const deadline = Date.now() + timeout
      for (;;) {
        const ok = live().every((n) => cli(n.port, 'cluster', 'info').includes('cluster_state:ok'))
        const masters = cluster.masters()
        const covered = masters.reduce((sum, m) => sum + m.slots.reduce((s, [a, b]) => s + b - a + 1, 0), 0)
        if (ok && masters.length === 3 && covered === 16384) return
        if (Date.now() > deadline) throw new Error(`cluster did not settle: ${live().map((n) => cli(n.port, 'cluster', 'nodes')).join('\n')}`)
        await sleep(100)
      }
    },
    removeDir () {
      rmSync(dir, { recursive: true, force: true })
    },
    async stop () {
      await Promise.all(nodes.map(async ({ process: child }) => {
        if (child.exitCode !== null || child.signalCode !== null) return
        child.ref()
        child.kill('SIGKILL')
        await once(child, 'exit')
      }))
      cluster.removeDir()
    }
  }
  try {
    for (let i = 0; i < 6; i++) nodes.push(await startNode(dir, cli))
    const created = spawnSync('redis-cli', ['--cluster', 'create', ...nodes.map((n) => `127.0.0.1:${n.port}`),
      '--cluster-replicas', '1', '--cluster-yes'], { encoding: 'utf8', timeout: 60_000 })
    if (created.status !== 0) throw new Error(`redis-cli --cluster create failed${created.error === undefined ? '' : ` (${created.error.message})`}: ${created.stdout}${created.stderr}`)
    await cluster.settled()
    // A replica can take over only once it has synced with its master.
    const deadline = Date.now() + 20_000
    while (!nodes.every(({ port }) => !cli(port, 'info', 'replication').includes('role:slave') || cli(port, 'info', 'replication').includes('master_link_status:up'))) {
      if (Date.now() > deadline) throw new Error('cluster replicas did not sync')
      await sleep(50)
    }
    cluster.startup = nodes.slice(0, 3).map((n) => ({ host: '127.0.0.1', port: n.port }))
    return cluster
  } catch (err) {
    await cluster.stop()
    throw err
  }
}

/** A free port whose cluster bus port (port + 10000) is free and valid too. */
async function clusterPort (): Promise<number> {
  for (;;) {
    const port = await freePort()
    if (port > 55_535) continue
    const bus = createServer()
    const free = await new Promise<boolean>((resolve) => {
      bus.once('error', () => resolve(false))
      bus.listen(port + 10_000, '127.0.0.1', () => resolve(true))
    })
    if (free) {
      bus.close()
      await once(bus, 'close')
      return port
    }
  }
}

/** One cluster-enabled redis-server on a free port; another port if that one was taken meanwhile. */
async function startNode (dir: string, cli: (port: number, ...args: string[]) => string): Promise<ClusterNodeProcess> {
  for (let attempt = 1; ; attempt++) {
    const port = await clusterPort()
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--cluster-enabled', 'yes',
      '--cluster-config-file', join(dir, `nodes-${port}.conf`), '--cluster-node-timeout', '1000',
      '--save', '', '--appendonly', 'no', '--dir', dir, '--loglevel', 'warning', '--enable-debug-command', 'local'], { stdio: 'ignore' })
    // Not holding the event loop: a test file's process ends when its tests do, and its 'exit' hook kills them.
    child.unref()
    const deadline = Date.now() + 5000
    while (cli(port, 'ping').trim() !== 'PONG' && child.exitCode === null && Date.now() < deadline) await sleep(25)
    if (child.exitCode === null && Date.now() < deadline) return { port, process: child }
    child.kill('SIGKILL')
    if (attempt === 3) throw new Error(`a cluster node did not start on port ${port}`)
  }
}

/** The port of the master serving `slot`. */
export function ownerOf (cluster: RedisCluster, slot: number): number {
  const owner = cluster.masters().find((m) => m.slots.some(([a, b]) => slot >= a && slot <= b))
  assert.ok(owner !== undefined, `slot ${slot} has a master`)
  return owner.port
}

/** Moves one slot, with its keys, from the master serving it to another master, as redis-cli --cluster reshard does. */
export async function moveSlot (cluster: RedisCluster, slot: number, to: number): Promise<void> {
  const from = ownerOf(cluster, slot)
  const id = (port: number): string => cluster.cli(port, 'cluster', 'myid').trim()
  assert.match(cluster.cli(to, 'cluster', 'setslot', String(slot), 'importing', id(from)), /OK/)
  assert.match(cluster.cli(from, 'cluster', 'setslot', String(slot), 'migrating', id(to)), /OK/)
  for (;;) {
    const keys = cluster.cli(from, 'cluster', 'getkeysinslot', String(slot), '10').trim().split('\n').filter((k) => k !== '')
    if (keys.length === 0) break
    assert.match(cluster.cli(from, 'migrate', '127.0.0.1', String(to), '', '0', '5000', 'KEYS', ...keys), /OK/)
    // Let the app's commands run in between: they meet ASK/TRYAGAIN redirections, as in a real reshard.
    await sleep(5)
  }
  // The new owner first, then the old one, then the rest (what redis-cli --cluster reshard does).
  const others = cluster.masters().map((m) => m.port).filter((p) => p !== from && p !== to)
  for (const port of [to, from, ...others]) cluster.cli(port, 'cluster', 'setslot', String(slot), 'node', id(to))
  await eventually(() => ownerOf(cluster, slot) === to, 'every node agrees on the new owner')
}

export { slotOf }
