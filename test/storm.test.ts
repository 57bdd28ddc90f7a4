import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'
import { startApp, HASH } from './helpers/app.ts'
import { eventually } from './helpers/client.ts'
import { spawnInstance } from './helpers/instance.ts'
import { startRedis } from './helpers/redis.ts'

const USERS = 2500
const DEVICES = 2

/** A lean device: reconnects at once (with a little jitter) to `target()`, resuming from its last id. */
class Device {
  ws: WebSocket | null = null
  readonly ids: string[] = []
  readyAt = 0
  connections = 0
  stopped = false
  failures: string[] = []
  constructor (readonly userId: string, readonly target: () => string) {}

  connect (): Promise<void> {
    this.connections++
    const ws = this.ws = new WebSocket(this.target())
    return new Promise((resolve) => {
      ws.on('open', () => {
        const since = this.ids.at(-1)
        ws.send(JSON.stringify({ type: 'auth', userId: this.userId, hash: HASH, ...(since === undefined ? {} : { since }) }))
      })
      ws.on('message', (data) => {
        const frame = JSON.parse(data.toString())
        if (frame.type === 'ready') {
          if (frame.recovered === false) this.failures.push('not recovered')
          this.readyAt = Date.now()
          resolve()
        } else if (frame.type === 'message') {
          this.ids.push(frame.id)
        }
      })
      ws.on('error', () => {})
      ws.on('close', (code) => {
        this.readyAt = 0
        if (this.stopped || code === 1000) return
        setTimeout(() => { this.connect().catch(() => {}) }, Math.random() * 250)
        resolve()
      })
    })
  }
}

test(`reconnect storm: ${USERS * DEVICES} connections dropped at once come back on one instance, authenticated, losing nothing`, async (t) => {
  const redis = await startRedis()
  const a = await spawnInstance(redis.url, 5000)
  const b = await spawnInstance(redis.url, 5000)
  const api = await startApp({ redis: redis.url }, false)
  let alive = a.url
  const devices: Device[] = []
  t.after(async () => {
    for (const d of devices) {
      d.stopped = true
      d.ws?.terminate()
    }
    a.child.kill('SIGKILL')
    b.child.kill('SIGKILL')
    await api.app.close()
    await redis.stop()
  })

  await Promise.all(Array.from({ length: USERS }, (_, i) => api.app.comet.registerAuth(`u${i}`, HASH)))
  for (let i = 0; i < USERS; i++) {
    for (let d = 0; d < DEVICES; d++) devices.push(new Device(`u${i}`, () => alive))
  }
  for (let i = 0; i < devices.length; i += 250) await Promise.all(devices.slice(i, i + 250).map((d) => d.connect()))
  assert.equal(devices.filter((d) => d.readyAt > 0).length, USERS * DEVICES)
  const before = await Promise.all(Array.from({ length: USERS }, (_, i) => api.app.comet.sendToUser(`u${i}`, 'e', 'before')))
  await eventually(() => devices.every((d) => d.ids.length === 1), 'everyone got the first message', 20_000)

  // Every socket on A drops at the same moment; the "load balancer" now sends everyone to B.
  alive = b.url
  const killedAt = Date.now()
  a.child.kill('SIGKILL')
  await once(a.child, 'exit')
  const during = await Promise.all(Array.from({ length: USERS }, (_, i) => api.app.comet.sendToUser(`u${i}`, 'e', 'during')))
  await eventually(() => devices.every((d) => d.readyAt > killedAt), 'every device re-authenticated on B', 60_000)
  const storm = Math.max(...devices.map((d) => d.readyAt)) - killedAt
  t.diagnostic(`${USERS * DEVICES} connections re-authenticated on one instance in ${storm} ms`)

  await eventually(() => devices.every((d) => d.ids.length === 2), 'every device got the message sent during the storm', 20_000)
  for (const [i, d] of devices.entries()) {
    const user = Math.floor(i / DEVICES)
    assert.deepEqual(d.ids, [before[user]?.id, during[user]?.id], `device ${i} got each message once`)
  }
  assert.deepEqual(devices.flatMap((d) => d.failures), [])
  assert.equal(b.child.exitCode, null, 'B did not crash')
  assert.ok(devices.every((d) => d.connections === 2))
})
