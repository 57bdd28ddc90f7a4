import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { HASH, startApp } from './helpers/app.ts'
import { deliveredOnce, eventually, TestClient } from './helpers/client.ts'
import { freePort, startRedis } from './helpers/redis.ts'

const cli = (port: number, ...args: string[]): string => spawnSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).stdout ?? ''

test('Sentinel: the primary SIGKILLed during a message stream; after the failover a device that stayed and one that resumes have every accepted message', async (t) => {
  const primary = await startRedis()
  const replica = await startRedis()
  const dir = mkdtempSync(join(tmpdir(), 'comet-sentinel-'))
  const spawned: { sentinel?: ChildProcess } = {}
  const apps: Array<{ close: () => Promise<unknown> }> = []
  const clients: TestClient[] = []
  const stream = { on: true }
  t.after(async () => {
    stream.on = false
    await Promise.all(clients.map(async (c) => await c.close()))
    await Promise.all(apps.map(async (app) => await app.close()))
    const { sentinel } = spawned
    if (sentinel !== undefined && sentinel.exitCode === null) {
      sentinel.kill('SIGKILL')
      await once(sentinel, 'exit')
    }
    await Promise.all([primary.stop(), replica.stop()])
    rmSync(dir, { recursive: true, force: true })
  })
  // Loading the primary's copy straight from the socket: no dump.rdb written into the working directory.
  assert.match(cli(replica.port, 'config', 'set', 'repl-diskless-load', 'swapdb'), /OK/)
  assert.match(cli(replica.port, 'replicaof', '127.0.0.1', String(primary.port)), /OK/)
  await eventually(() => cli(replica.port, 'info', 'replication').includes('master_link_status:up'), 'the replica synced', 10_000)
  const port = await freePort()
  writeFileSync(join(dir, 'sentinel.conf'), [`port ${port}`, 'bind 127.0.0.1', `dir ${dir}`,
    `sentinel monitor mymaster 127.0.0.1 ${primary.port} 1`, 'sentinel down-after-milliseconds mymaster 500',
    'sentinel failover-timeout mymaster 2000', ''].join('\n'))
  spawned.sentinel = spawn('redis-server', [join(dir, 'sentinel.conf'), '--sentinel'], { stdio: 'ignore' })
  await eventually(() => cli(port, 'sentinel', 'get-master-addr-by-name', 'mymaster').includes(String(primary.port)), 'the sentinel watches the primary')
  await eventually(() => cli(port, 'sentinel', 'replicas', 'mymaster').includes(String(replica.port)), 'the sentinel knows the replica', 10_000)

  const options = { redis: { sentinels: [{ host: '127.0.0.1', port }], name: 'mymaster' }, heartbeatInterval: 200 }
  const a = await startApp(options)
  apps.push(a.app)
  const b = await startApp(options)
  apps.push(b.app)
  await a.app.comet.registerAuth('s', HASH)
  const stays = await TestClient.open(b.url)
  const leaves = await TestClient.open(a.url)
  clients.push(stays, leaves)
  await stays.auth('s', HASH)
  await leaves.auth('s', HASH)

  const sent: string[] = []
  /** Sends that failed while the primary died: each may still have run there and reached the replica. */
  let failed = 0
  const sending = (async () => {
    for (let i = 0; stream.on; i++) {
      const result = await a.app.comet.sendToUser('s', 'n', i).catch(() => null)
      if (result === null) {
        failed++
        await sleep(50)
      } else sent.push(result.id)
      await sleep(2)
    }
  })()
  await eventually(() => leaves.messages().length >= 5, 'the stream flows')
  const since = leaves.messages().at(-1)?.id as string
  await leaves.close()
  await primary.stop()
  await eventually(() => cli(port, 'sentinel', 'get-master-addr-by-name', 'mymaster').includes(String(replica.port)), 'the sentinel promoted the replica', 20_000)
  const before = sent.length
  await eventually(() => sent.length >= before + 20, 'sends are accepted by the new primary', 20_000)
  stream.on = false
  await sending

  // The device that stayed either catches up in place, or (if the store would not answer its catch-up while
  // the failover settled) is closed with 1012 and resumes, as the project's client does.
  await eventually(() => stays.messages().length >= sent.length || stays.closeCode !== null, 'the device that stayed caught up', 15_000)
  const stayed = stays.messages().map((m) => m.id)
  if (stays.closeCode !== null) {
    assert.equal(stays.closeCode, 1012)
    t.diagnostic('the device that stayed was asked to resume (1012)')
    const again = await TestClient.open(b.url)
    clients.push(again)
    assert.equal((await again.auth('s', HASH, { since: stayed.at(-1) })).recovered, true)
    await eventually(() => stayed.length + again.messages().length >= sent.length, 'the resumed device got the rest')
    stayed.push(...again.messages().map((m) => m.id))
  }
  deliveredOnce(stayed, sent, failed, 'the device that stayed')
  const back = await TestClient.open(a.url)
  clients.push(back)
  const ready = await back.auth('s', HASH, { since })
  assert.equal(ready.recovered, true)
  const expected = sent.slice(sent.indexOf(since) + 1)
  await eventually(() => back.messages().length >= expected.length, 'the resumed device got everything after since')
  deliveredOnce(back.messages().map((m) => m.id), expected, failed, 'the resumed device')
})
