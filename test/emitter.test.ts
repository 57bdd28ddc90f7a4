import { test } from 'node:test'
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import type { TestContext } from 'node:test'
import { CometEmitter } from '../lib/emitter/index.ts'
import type { EmitterOptions } from '../lib/emitter/index.ts'
import { HASH } from './helpers/app.ts'
import { dropPrefix, sharedCluster, testPrefix } from './helpers/backends.ts'
import { member } from './helpers/channels.ts'
import { eventually, TestClient } from './helpers/client.ts'
import { startPair } from './helpers/pair.ts'

interface Worker {
  child: ChildProcess
  packages: string[]
  run (method: string, ...args: unknown[]): Promise<{ result?: any, error?: { code: string, message: string } }>
  /** Ends stdin: from here only what the emitter left open keeps the process alive. */
  end (): void
  exited: Promise<number | null>
}

/** test/fixtures/emitter.ts in a child process: a worker with nothing of Fastify in it. */
async function spawnWorker (t: TestContext, options: Record<string, unknown>): Promise<Worker> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('./fixtures/emitter.ts', import.meta.url).pathname], {
    env: { ...process.env, EMITTER_OPTIONS: JSON.stringify(options) },
    stdio: ['pipe', 'pipe', 'inherit']
  })
  const exited = once(child, 'exit').then(([code]) => code as number | null)
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  const lines = createInterface({ input: child.stdout as Readable })[Symbol.asyncIterator]()
  const next = async (): Promise<any> => JSON.parse((await lines.next()).value as string)
  const { packages } = await next() as { packages: string[] }
  let queue = Promise.resolve()
  return {
    child,
    packages,
    exited,
    end: () => child.stdin?.end(),
    run: async (method, ...args) => {
      const turn = queue.then(async () => {
        child.stdin?.write(JSON.stringify({ method, args }) + '\n')
        return await next()
      })
      queue = turn.then(() => {}, () => {})
      return await turn
    }
  }
}

test('an emitter in a worker process reaches devices on two instances, and the worker exits after close()', async (t) => {
  const history = { news: { size: 10 } }
  const { a, b, redis } = await startPair(t, { history, presenceGrace: 0 })
  const worker = await spawnWorker(t, { redis: redis?.url, history, presenceGrace: 0 })
  for (const name of ['fastify', 'ws', '@fastify/websocket', 'fastify-plugin']) {
    assert.ok(!worker.packages.includes(name), `the emitter does not load ${name}: ${worker.packages.join(', ')}`)
  }
  assert.ok(worker.packages.includes('ioredis'), 'the check sees the packages the emitter does load')

  assert.deepEqual(await worker.run('registerAuth', 'u1', HASH), { result: null })
  const onA = await TestClient.open(a.url)
  const onB = await TestClient.open(b.url)
  t.after(() => Promise.all([onA.close(), onB.close()]))
  await onA.auth('u1', HASH)
  await onB.auth('u1', HASH)

  const sent = await worker.run('sendToUser', 'u1', 'invoice_paid', { invoice: 'A-17' })
  assert.equal(sent.result.queued, false)
  for (const device of [onA, onB]) {
    const message = await device.type('message')
    assert.deepEqual([message.id, message.event, message.data], [sent.result.id, 'invoice_paid', { invoice: 'A-17' }])
  }
  assert.deepEqual(await worker.run('presence', 'u1').then((r) => [r.result.online, r.result.devices, typeof r.result.lastSeen]), [true, 2, 'string'])
  assert.deepEqual(await worker.run('isOnline', 'u1'), { result: true })

  // Channels: publish with history, counts, members.
  const reader = await member(b.url, 'u1', ['news', 'track_room'])
  t.after(() => reader.close())
  const published = await worker.run('publish', 'news', 'headline', { title: 'hi' })
  assert.equal((await reader.next((f) => f.type === 'message' && f.channel === 'news')).id, published.result.id)
  assert.deepEqual((await worker.run('history', 'news')).result.messages.map((m: any) => m.data), [{ title: 'hi' }])
  assert.deepEqual(await worker.run('channelStats', 'news'), { result: { subscribers: 1, users: 1 } })
  assert.deepEqual(await worker.run('members', 'track_room'), { result: ['u1'] })
  await eventually(async () => (await worker.run('channels')).result.some((c: any) => c.channel === 'news'), 'channels() lists news')

  // Coded errors, as app.comet gives them.
  for (const [method, args, code] of [
    ['sendToUser', ['not an id', 'e', 1], 'FST_ERR_COMET_USER_ID'],
    ['publish', ['msg', 'e', 1], 'FST_ERR_COMET_CHANNEL'],
    ['registerAuth', ['u1', 'short'], 'FST_ERR_COMET_HASH'],
    ['history', ['other'], 'FST_ERR_COMET_HISTORY'],
    ['sendToUser', ['u1', 'e', 1, { idempotencyKey: 'no spaces' }], 'FST_ERR_COMET_IDEMPOTENCY_KEY']
  ] as const) {
    assert.equal((await worker.run(method, ...args)).error?.code, code, `${method} ${JSON.stringify(args)}`)
  }

  // A user with no device: queued, and delivered when a device comes.
  await worker.run('registerAuth', 'u2', HASH)
  assert.equal((await worker.run('sendToUser', 'u2', 'note', 1)).result.queued, true)
  const late = await TestClient.open(a.url)
  t.after(() => late.close())
  await late.auth('u2', HASH)
  assert.equal((await late.type('message')).data, 1)

  // revokeAuth closes the user's sockets on every instance with 4401.
  await worker.run('revokeAuth', 'u1')
  assert.deepEqual(await Promise.all([onA.closed, onB.closed, reader.closed]), [4401, 4401, 4401])
  const again = await TestClient.open(b.url)
  again.send({ type: 'auth', userId: 'u1', hash: HASH })
  assert.equal(await again.closed, 4401)

  assert.deepEqual(await worker.run('close'), { result: null })
  assert.equal((await worker.run('sendToUser', 'u2', 'e', 1)).error?.code, 'FST_ERR_COMET_CLOSED')
  worker.end()
  const code = await Promise.race([worker.exited, new Promise((resolve) => setTimeout(resolve, 10_000, 'still running'))])
  assert.equal(code, 0, 'the worker exits on its own once the emitter is closed')
})

test('an emitter needs redis, and takes only the options that shape stored data', () => {
  assert.throws(() => new CometEmitter({} as EmitterOptions), (err: Error & { code: string }) => {
    assert.equal(err.code, 'FST_ERR_COMET_OPTIONS')
    assert.match(err.message, /redis is required/)
    return true
  })
  const bad: unknown[] = [
    undefined,
    { redis: 'redis://127.0.0.1:1', path: '/comet' },
    { redis: 'redis://127.0.0.1:1', prefix: 'x:' },
    { redis: 'redis://127.0.0.1:1', keyPrefix: 'a b' },
    { redis: 'redis://127.0.0.1:1', offlineQueue: { maxMessages: 0 } },
    { redis: 'redis://127.0.0.1:1', idempotencyTtl: 0 },
    { redis: 'redis://127.0.0.1:1', history: { 'a/b': { size: 1 } } },
    { redis: 'redis://127.0.0.1:1', logger: console.log },
    { redis: 5 }
  ]
  for (const options of bad) {
    assert.throws(() => new CometEmitter(options as EmitterOptions), { code: 'FST_ERR_COMET_OPTIONS' }, JSON.stringify(options))
  }
})

test('an emitter whose Redis is down rejects with FST_ERR_COMET_UNAVAILABLE', async (t) => {
  const { a, redis } = await startPair(t)
  const url = redis?.url as string
  const emitter = new CometEmitter({ redis: url })
  t.after(() => emitter.close())
  await emitter.registerAuth('u', HASH)
  const client = await TestClient.open(a.url)
  t.after(() => client.close())
  await client.auth('u', HASH)
  await redis?.stop()
  await assert.rejects(emitter.sendToUser('u', 'e', 1), { code: 'FST_ERR_COMET_UNAVAILABLE' })
  await assert.rejects(emitter.presence('u'), { code: 'FST_ERR_COMET_UNAVAILABLE' })
})

test('an emitter on a Redis Cluster reaches both instances, with the app\'s keyPrefix', async (t) => {
  const cluster = await sharedCluster()
  const prefix = testPrefix()
  const { a, b } = await startPair(t, { keyPrefix: prefix }, 'cluster')
  const emitter = new CometEmitter({ redis: { cluster: cluster.startup }, keyPrefix: prefix })
  t.after(async () => {
    await emitter.close()
    dropPrefix(cluster, prefix)
  })
  await emitter.registerAuth('u', HASH)
  const onA = await member(a.url, 'u', ['news'])
  const onB = await member(b.url, 'u')
  t.after(() => Promise.all([onA.close(), onB.close()]))
  const sent = await emitter.sendToUser('u', 'e', 'hi')
  assert.deepEqual((await Promise.all([onA.type('message'), onB.type('message')])).map((m) => m.id), [sent.id, sent.id])
  const { id } = await emitter.publish('news', 'e', 2)
  assert.equal((await onA.next((f) => f.type === 'message' && f.channel === 'news')).id, id)
  assert.deepEqual((await emitter.presence('u')).devices, 2)
  assert.deepEqual(await emitter.channelStats('news'), { subscribers: 1, users: 1 })
  await emitter.revokeAuth('u')
  assert.deepEqual(await Promise.all([onA.closed, onB.closed]), [4401, 4401])
})
