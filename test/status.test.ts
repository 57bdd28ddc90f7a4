// The user status behind `user_status_<id>`, at the store level, on both stores: online as the first device
// arrives, offline once the grace period after the last one is over or its devices lapsed; each once.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { MemoryStore } from '../lib/store/memory/index.ts'
import type { BusHandlers, Store, StoreSettings } from '../lib/store/types.ts'
import { NO_HANDLERS, redisStore, STORE_SETTINGS } from './helpers/store.ts'

const GRACE = 200
const TTL = 1200
const SETTINGS: StoreSettings = { ...STORE_SETTINGS, presenceTtl: TTL, presenceGrace: GRACE }

/** A started store listening on user_status_u; `frames` collects the status changes it reports. */
async function storeOf (t: TestContext, kind: 'memory' | 'redis'): Promise<{ store: Store, frames: string[] }> {
  const frames: string[] = []
  const handlers: BusHandlers = { ...NO_HANDLERS, status: (_userId, online) => frames.push(online ? 'online' : 'offline') }
  let store: Store
  if (kind === 'memory') {
    store = new MemoryStore(SETTINGS)
    await store.start(handlers)
    t.after(() => store.close())
  } else {
    store = (await redisStore(t, SETTINGS, handlers)).store
  }
  await store.listenChannel('user_status_u')
  await store.setAuth('u', 'digest', undefined)
  return { store, frames }
}

async function attach (store: Store, device: string): Promise<void> {
  assert.equal((await store.attach('u', device, { digest: 'digest' }, null)).ok, true)
}

for (const kind of ['memory', 'redis'] as const) {
  test(`${kind} store: one online for the first device, none for more devices and heartbeats`, async (t) => {
    const { store, frames } = await storeOf(t, kind)
    const first = `${Date.now()}.i.1`
    await attach(store, first)
    await attach(store, `${Date.now()}.i.2`)
    await store.refresh(new Map([['u', [first]]]))
    await sleep(20)
    assert.deepEqual(frames, ['online'], 'one online for two devices and a heartbeat')

    assert.equal(await store.detach('u', `${Date.now()}.i.x`), null, 'a device it does not know: the others stay')
    const status = await store.status('u')
    assert.deepEqual([status.online, status.devices, status.due], [true, 2, null])
  })

  test(`${kind} store: the grace period: a device back within it keeps the user online; after it, one offline`, async (t) => {
    const { store, frames } = await storeOf(t, kind)
    const first = `${Date.now()}.i.1`
    await attach(store, first)
    const before = Date.now()
    const due = await store.detach('u', first)
    assert.ok(due !== null && due >= before + GRACE && due <= Date.now() + GRACE, `grace ends ${String(due)}`)
    const during = await store.status('u')
    assert.deepEqual([during.online, during.devices, during.due], [true, 0, due])

    const second = `${Date.now()}.i.2`
    await attach(store, second)
    await sleep(GRACE + 50)
    assert.equal((await store.status('u')).online, true, 'back within the grace period')
    assert.equal(await store.detach('u', second) !== null, true)
    await sleep(GRACE + 50)
    const after = await store.status('u')
    assert.deepEqual([after.online, after.devices, after.due], [false, 0, null])
    await store.status('u')
    await sleep(20)
    assert.deepEqual(frames, ['online', 'offline'], 'no flap, then offline once')
  })

  test(`${kind} store: a device not refreshed for two heartbeats stops counting for the status before it lapses for routing`, async (t) => {
    const { store, frames } = await storeOf(t, kind)
    await attach(store, `${Date.now()}.i.1`)
    await sleep((2 * TTL) / 3 + 30)
    const status = await store.status('u')
    assert.deepEqual([status.online, status.devices, status.due], [false, 1, null], 'offline, though routing still counts the device')
    await sleep(20)
    assert.deepEqual(frames, ['online', 'offline'])
  })

  test(`${kind} store: devices nobody refreshes lapse, and the next sweep sends offline at once`, async (t) => {
    const { store, frames } = await storeOf(t, kind)
    await attach(store, `${Date.now()}.i.1`)
    await sleep(TTL + 50)
    const status = await store.status('u')
    assert.deepEqual([status.online, status.devices, status.due], [false, 0, null])
    await sleep(20)
    assert.deepEqual(frames, ['online', 'offline'])
  })
}

test('memory store: its periodic sweep ends a grace period that no timer ended', async (t) => {
  const { store, frames } = await storeOf(t, 'memory')
  const device = `${Date.now()}.i.1`
  await attach(store, device)
  await store.detach('u', device)
  await sleep(GRACE + 50)
  await store.maintain()
  assert.deepEqual(frames, ['online', 'offline'])
})
