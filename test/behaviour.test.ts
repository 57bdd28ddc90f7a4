import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { appOn, BACKENDS } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'

for (const backend of BACKENDS) {
  describe(`behaviour on the ${backend} store`, () => {
    test('a user authenticates with (userId, hash) and receives private messages', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth(42, HASH)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      const ready = await client.auth('42', HASH, { ref: 'r1' })
      const { last, ...rest } = ready
      assert.deepEqual(rest, { type: 'ready', userId: '42', queued: 0, dropped: 0, ref: 'r1' })
      assert.match(last, /^\d+$/, 'ready carries the id the device is in sync with')
      const sent = await app.comet.sendToUser('42', 'event1', { text: 'hi', n: [1, 2] })
      assert.equal(sent.queued, false)
      assert.match(sent.id, /^\d+$/)
      assert.ok(BigInt(sent.id) > BigInt(last), 'a message sent after ready is newer than its last')
      const message = await client.type('message')
      assert.deepEqual(message, { type: 'message', channel: 'msg', event: 'event1', data: { text: 'hi', n: [1, 2] }, id: sent.id })
    })

    test('every device of the user gets each message once, in send order', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('u1', HASH)
      const devices = await Promise.all([TestClient.open(url), TestClient.open(url), TestClient.open(url)])
      t.after(() => Promise.all(devices.map((d) => d.close())))
      for (const d of devices) await d.auth('u1', HASH)
      const ids: string[] = []
      for (let i = 0; i < 50; i++) ids.push((await app.comet.sendToUser('u1', 'n', i)).id)
      for (const d of devices) {
        await eventually(() => d.messages().length >= 50, 'all 50 messages')
        assert.deepEqual(d.messages().map((m) => m.id), ids)
        assert.deepEqual(d.messages().map((m) => m.data), [...Array(50).keys()])
      }
      assert.deepEqual([...ids].sort((a, b) => Number(a) - Number(b)), ids, 'ids increase in send order')
    })

    test('messages to an offline user are queued and arrive in order, before live ones, then leave the queue', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('q', HASH)
      const queued = []
      for (let i = 0; i < 5; i++) queued.push(await app.comet.sendToUser('q', 'e', i))
      assert.ok(queued.every((r) => r.queued))
      const first = await TestClient.open(url)
      const ready = await first.auth('q', HASH)
      assert.equal(ready.queued, 5)
      const live = await app.comet.sendToUser('q', 'e', 'live')
      await eventually(() => first.messages().length === 6, 'queued + live')
      assert.deepEqual(first.messages().map((m) => m.data), [0, 1, 2, 3, 4, 'live'])
      assert.equal(first.messages()[5]?.id, live.id)
      assert.equal(first.frames.indexOf(ready), 0, 'ready comes first')
      await first.close()

      const second = await TestClient.open(url)
      t.after(() => second.close())
      const again = await second.auth('q', HASH)
      assert.equal(again.queued, 0, 'the queue was emptied by the first device')
      await sleep(50)
      assert.equal(second.messages().length, 0)
    })

    test('queue overflow drops the oldest and says how many in ready', async (t) => {
      const { app, url } = await appOn(t, backend, { offlineQueue: { maxMessages: 3 } })
      await app.comet.registerAuth('over', HASH)
      for (let i = 0; i < 7; i++) await app.comet.sendToUser('over', 'e', i)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      const ready = await client.auth('over', HASH)
      assert.equal(ready.dropped, 4)
      assert.equal(ready.queued, 3)
      await eventually(() => client.messages().length === 3, 'the 3 newest')
      assert.deepEqual(client.messages().map((m) => m.data), [4, 5, 6])
    })

    test('offlineQueue: false sends to online devices only', async (t) => {
      const { app, url } = await appOn(t, backend, { offlineQueue: false })
      await app.comet.registerAuth('nq', HASH)
      assert.equal((await app.comet.sendToUser('nq', 'e', 1)).queued, false)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      assert.equal((await client.auth('nq', HASH)).queued, 0)
      await app.comet.sendToUser('nq', 'e', 2)
      await client.type('message')
      assert.deepEqual(client.messages().map((m) => m.data), [2])
    })

    test('wrong hash, unknown user and revoked hash close with 4401', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('a', HASH)
      const wrong = await TestClient.open(url)
      wrong.send({ type: 'auth', userId: 'a', hash: 'not-the-right-hash-at-all' })
      assert.equal(await wrong.closed, 4401)
      const unknown = await TestClient.open(url)
      unknown.send({ type: 'auth', userId: 'nobody', hash: HASH })
      assert.equal(await unknown.closed, 4401)

      const live = await TestClient.open(url)
      await live.auth('a', HASH)
      await app.comet.revokeAuth('a')
      assert.equal(await live.closed, 4401)
      const after = await TestClient.open(url)
      after.send({ type: 'auth', userId: 'a', hash: HASH })
      assert.equal(await after.closed, 4401)
    })

    test('re-registering a hash replaces the old one', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('rr', HASH)
      await app.comet.registerAuth('rr', 'the-second-secret-hash')
      const old = await TestClient.open(url)
      old.send({ type: 'auth', userId: 'rr', hash: HASH })
      assert.equal(await old.closed, 4401)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      await client.auth('rr', 'the-second-secret-hash')
    })

    test('a hash registered with a ttl expires', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('ttl', HASH, { ttl: 1000 })
      const early = await TestClient.open(url)
      await early.auth('ttl', HASH)
      await early.close()
      await sleep(1100)
      const late = await TestClient.open(url)
      late.send({ type: 'auth', userId: 'ttl', hash: HASH })
      assert.equal(await late.closed, 4401)
    })

    test('no auth frame within authTimeout closes with 4408', async (t) => {
      const { url } = await appOn(t, backend, { authTimeout: 100 })
      const client = await TestClient.open(url)
      assert.equal(await client.closed, 4408)
    })

    test('anonymous connections use public channels only', async (t) => {
      const { app, url } = await appOn(t, backend)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      client.send({ type: 'auth' })
      assert.deepEqual(await client.type('ready'), { type: 'ready', userId: null })
      client.send({ type: 'subscribe', channel: 'news', ref: 3 })
      assert.deepEqual(await client.type('subscribed'), { type: 'subscribed', channel: 'news', ref: 3 })
      const { id } = await app.comet.publish('news', 'update', { v: 1 })
      assert.deepEqual(await client.type('message'), { type: 'message', channel: 'news', event: 'update', data: { v: 1 }, id })
      client.send({ type: 'unsubscribe', channel: 'news' })
      await client.type('unsubscribed')
      await app.comet.publish('news', 'update', { v: 2 })
      client.send({ type: 'ping', ref: 'p' })
      await client.type('pong')
      assert.equal(client.messages('news').length, 1, 'nothing after unsubscribe')
    })

    test('frames sent right after auth wait for ready and are answered in order', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('fast', HASH)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      client.send({ type: 'auth', userId: 'fast', hash: HASH })
      client.send({ type: 'subscribe', channel: 'c1' })
      client.send({ type: 'ping', ref: 1 })
      await client.type('pong')
      assert.deepEqual(client.frames.map((f) => f.type), ['ready', 'subscribed', 'pong'])
    })

    test('bad frames get coded error frames and the connection stays usable', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('bad', HASH)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      client.send({ type: 'subscribe', channel: 'x', ref: 'early' })
      assert.equal((await client.next((f) => f.ref === 'early')).code, 'auth_required')
      await client.auth('bad', HASH)
      const cases: Array<[unknown, string]> = [
        ['{not json', 'bad_json'],
        ['[1,2]', 'bad_json'],
        [{ type: 'nope', ref: 1 }, 'unknown_type'],
        [{ ref: 2 }, 'unknown_type'],
        [{ type: 'subscribe', channel: 'has space', ref: 3 }, 'bad_channel'],
        [{ type: 'subscribe', channel: 'msg', ref: 4 }, 'bad_channel'],
        [{ type: 'subscribe', channel: 'x'.repeat(65), ref: 5 }, 'bad_channel'],
        [{ type: 'auth', userId: 'bad', hash: HASH, ref: 6 }, 'already_authenticated'],
        [{ type: 'ping', ref: 'r'.repeat(65) }, 'bad_frame'],
        [{ type: 'ping', ref: { nested: true } }, 'bad_frame']
      ]
      for (const [frame, code] of cases) {
        const before = client.frames.length
        client.send(frame)
        await eventually(() => client.frames.length > before, `reply to ${JSON.stringify(frame)}`)
        const reply = client.frames.at(-1)
        assert.equal(reply?.type, 'error', JSON.stringify(frame))
        assert.equal(reply?.code, code, JSON.stringify(frame))
        assert.equal(typeof reply?.message, 'string')
      }
      assert.equal(client.frames.find((f) => f.code === 'unknown_type')?.ref, 1, 'ref echoed on errors')
      client.ws.send(Buffer.from('{"type":"ping"}'), { binary: true })
      assert.equal((await client.next((f) => f.code === 'bad_json' && client.frames.indexOf(f) > 10)).type, 'error')
      client.send({ type: 'ping', ref: 'still' })
      await client.next((f) => f.type === 'pong' && f.ref === 'still')
      await app.comet.sendToUser('bad', 'e', 'ok')
      assert.equal((await client.type('message')).data, 'ok')
    })

    test('an auth frame with a malformed userId gets an error frame', async (t) => {
      const { url } = await appOn(t, backend)
      const client = await TestClient.open(url)
      t.after(() => client.close())
      client.send({ type: 'auth', userId: 'bad id!', hash: HASH })
      assert.equal((await client.type('error')).code, 'bad_frame')
      client.send({ type: 'auth', userId: 'ok', hash: 5 })
      await eventually(() => client.frames.length === 2, 'second error')
      assert.equal(client.frames[1]?.code, 'bad_frame')
    })

    test('a frame over maxPayload closes the connection with 1009', async (t) => {
      const { url } = await appOn(t, backend, { maxPayload: 1024 })
      const client = await TestClient.open(url)
      client.send({ type: 'auth', pad: 'x'.repeat(2000) })
      assert.equal(await client.closed, 1009)
    })

    test('maxSubscriptions caps subscriptions per connection', async (t) => {
      const { url } = await appOn(t, backend, { maxSubscriptions: 2 })
      const client = await TestClient.open(url)
      t.after(() => client.close())
      client.send({ type: 'auth' })
      for (const channel of ['a', 'b', 'a']) client.send({ type: 'subscribe', channel })
      client.send({ type: 'subscribe', channel: 'c', ref: 'third' })
      const refused = await client.next((f) => f.ref === 'third')
      assert.equal(refused.code, 'too_many_subscriptions')
      assert.equal(client.frames.filter((f) => f.type === 'subscribed').length, 3, 'a repeated subscribe is answered and counts once')
    })

    test('maxDevices with onDeviceLimit reject closes the extra device with 4429', async (t) => {
      const { app, url } = await appOn(t, backend, { maxDevices: 2 })
      await app.comet.registerAuth('lim', HASH)
      const a = await TestClient.open(url)
      const b = await TestClient.open(url)
      t.after(() => Promise.all([a.close(), b.close()]))
      await a.auth('lim', HASH)
      await b.auth('lim', HASH)
      const c = await TestClient.open(url)
      c.send({ type: 'auth', userId: 'lim', hash: HASH })
      assert.equal(await c.closed, 4429)
      assert.equal((await app.comet.presence('lim')).devices, 2)
      await a.close()
      await eventually(async () => (await app.comet.presence('lim')).devices === 1, 'slot freed')
      const d = await TestClient.open(url)
      t.after(() => d.close())
      await d.auth('lim', HASH)
    })

    test('maxDevices with evict-oldest closes the oldest device with 4409', async (t) => {
      const { app, url } = await appOn(t, backend, { maxDevices: 2, onDeviceLimit: 'evict-oldest' })
      await app.comet.registerAuth('ev', HASH)
      const a = await TestClient.open(url)
      await a.auth('ev', HASH)
      await sleep(5)
      const b = await TestClient.open(url)
      await b.auth('ev', HASH)
      const c = await TestClient.open(url)
      t.after(() => Promise.all([b.close(), c.close()]))
      await c.auth('ev', HASH)
      assert.equal(await a.closed, 4409)
      assert.equal(b.closeCode, null)
      await app.comet.sendToUser('ev', 'e', 1)
      await Promise.all([b.type('message'), c.type('message')])
    })

    test('presence counts devices and keeps lastSeen after the last one leaves', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('p', HASH)
      assert.deepEqual(await app.comet.presence('p'), { online: false, devices: 0, lastSeen: null })
      assert.equal(await app.comet.isOnline('p'), false)
      const a = await TestClient.open(url)
      const b = await TestClient.open(url)
      await a.auth('p', HASH)
      await b.auth('p', HASH)
      const online = await app.comet.presence('p')
      assert.equal(online.online, true)
      assert.equal(online.devices, 2)
      assert.equal(await app.comet.isOnline('p'), true)
      const before = Date.now()
      await a.close()
      await b.close()
      await eventually(async () => !(await app.comet.isOnline('p')), 'offline after close')
      const offline = await app.comet.presence('p')
      assert.equal(offline.devices, 0)
      assert.ok(offline.lastSeen instanceof Date)
      assert.ok(offline.lastSeen.getTime() >= before - 5 && offline.lastSeen.getTime() <= Date.now())
    })

    test('a client that stops answering pings is terminated by the heartbeat', async (t) => {
      const { app, url } = await appOn(t, backend, { heartbeatInterval: 100 })
      await app.comet.registerAuth('hb', HASH)
      const client = await TestClient.open(url, { autoPong: false })
      await client.auth('hb', HASH)
      assert.equal(await client.closed, 1006)
      await eventually(async () => !(await app.comet.isOnline('hb')), 'presence cleared')
    })

    test('closing the app closes sockets with 1001 and clears presence', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('bye', HASH)
      const client = await TestClient.open(url)
      await client.auth('bye', HASH)
      const presenceBefore = await app.comet.presence('bye')
      assert.equal(presenceBefore.devices, 1)
      await app.close()
      assert.equal(await client.closed, 1001)
      await assert.rejects(app.comet.sendToUser('bye', 'e', 1), { code: 'FST_ERR_COMET_CLOSED' })
    })
  })
}
