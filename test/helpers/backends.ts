import { spawnSync } from 'node:child_process'
import type { TestContext } from 'node:test'
import type { CometOptions } from '../../lib/index.ts'
import { startApp } from './app.ts'
import type { TestApp } from './app.ts'
import { startCluster } from './cluster.ts'
import type { RedisCluster } from './cluster.ts'
import { startRedis } from './redis.ts'

export type Backend = 'memory' | 'redis' | 'cluster'

/**
 * The backends a run covers: all of them, or those COMET_TEST_BACKENDS lists (`npm test` leaves the Redis
 * Cluster to `npm run test:all`).
 */
export function chosen<B extends Backend> (backends: readonly B[]): readonly B[] {
  const only = process.env['COMET_TEST_BACKENDS']?.split(',')
  return only === undefined ? backends : backends.filter((backend) => only.includes(backend))
}

/**
 * The behaviour suite runs once per store: the same promises hold in memory, on one Redis and on a Redis
 * Cluster (3 masters + 3 replicas, sharded pub/sub).
 */
export const BACKENDS = chosen<Backend>(['memory', 'redis', 'cluster'])

let shared: Promise<RedisCluster> | undefined

/**
 * One cluster per test file (process), started by the first test that needs it and SIGKILLed when the
 * process exits; tests keep apart by a prefix of their own.
 */
export async function sharedCluster (): Promise<RedisCluster> {
  if (shared === undefined) {
    shared = startCluster()
    const cluster = await shared
    process.once('exit', () => {
      for (const { process: child } of cluster.nodes) child.kill('SIGKILL')
      cluster.removeDir()
    })
  }
  return await shared
}

let prefixes = 0

/** A prefix no other test of this file uses, so tests can share one cluster. */
export function testPrefix (): string {
  return `t${process.pid}x${++prefixes}:`
}

/** Deletes every key under `prefix` on every master: only keys this test made, on a cluster we started. */
export function dropPrefix (cluster: RedisCluster, prefix: string): void {
  for (const { port } of cluster.masters()) {
    const keys = cluster.cli(port, '--scan', '--pattern', `${prefix}*`).trim().split('\n').filter((k) => k.startsWith(prefix))
    if (keys.length > 0) spawnSync('redis-cli', ['-p', String(port)], { input: keys.map((k) => `UNLINK ${k}`).join('\n') })
  }
}

/** Starts an app on the given backend (a fresh redis-server for 'redis'), closed after the test. */
export async function appOn (t: TestContext, backend: Backend, options: CometOptions = {}): Promise<TestApp> {
  if (backend === 'cluster') {
    const cluster = await sharedCluster()
    const prefix = options.keyPrefix ?? testPrefix()
    const started = await startApp({ redis: { cluster: cluster.startup }, keyPrefix: prefix, ...options })
    t.after(async () => {
      await started.app.close()
      dropPrefix(cluster, prefix)
    })
    return started
  }
  const redis = backend === 'redis' ? await startRedis() : null
  const started = await startApp({ ...(redis === null ? {} : { redis: redis.url }), ...options })
  t.after(async () => {
    await started.app.close()
    await redis?.stop()
  })
  return started
}
