import { describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { appOn, BACKENDS } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import { eventually } from './helpers/client.ts'
import { events, member, request } from './helpers/channels.ts'

const GRACE = 300

for (const backend of BACKENDS) {
  describe(`channels on the ${backend} store`, () => {
    test('web_ publish: subscribers get it with the server-stamped userId, the sender gets published and no copy', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('alice', HASH)
      const alice = await member(url, 'alice', ['web_chat'])
      const anon = await member(url, null, ['web_chat'])
      const other = await member(url, null, ['web_chat'])
      t.after(() => Promise.all([alice, anon, other].map((c) => c.close())))

      const done = await request(alice, { type: 'publish', channel: 'web_chat', event: 'say', data: { text: 'hi' }, userId: 'mallory' })
      assert.equal(done.type, 'published')
      assert.equal(typeof done.id, 'string')
      for (const c of [anon, other]) {
        const m = await c.next((f) => f.type === 'message' && f.id === done.id)
        assert.deepEqual(m, { type: 'message', channel: 'web_chat', event: 'say', data: { text: 'hi' }, userId: 'alice', id: done.id })
      }
      const fromAnon = await request(anon, { type: 'publish', channel: 'web_chat', event: 'say', data: 2 })
      const got = await alice.next((f) => f.type === 'message' && f.id === fromAnon.id)
      assert.equal(got.userId, null)
      await other.next((f) => f.type === 'message' && f.id === fromAnon.id)
      await sleep(100)
      assert.deepEqual(alice.messages('web_chat').map((m) => m.id), [fromAnon.id], 'alice did not get her own message')
      assert.deepEqual(anon.messages('web_chat').map((m) => m.id), [done.id], 'anon did not get its own message')
    })

    test('clients may publish only on web_ (anyone) and webauth_ (authorized) channels', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('bob', HASH)
      const bob = await member(url, 'bob')
      const anon = await member(url, null)
      t.after(() => Promise.all([bob.close(), anon.close()]))
      for (const channel of ['news', 'track_room', 'user_status_bob', 'private_bob']) {
        const reply = await request(bob, { type: 'publish', channel, event: 'e', data: 1 })
        assert.equal(reply.code, 'forbidden', channel)
      }
      assert.equal((await request(anon, { type: 'publish', channel: 'webauth_x', event: 'e' })).code, 'forbidden')
      assert.equal((await request(bob, { type: 'publish', channel: 'webauth_x', event: 'e' })).type, 'published')
      assert.equal((await request(anon, { type: 'publish', channel: 'web_x', event: 'bad.event' })).code, 'bad_frame')
      assert.equal((await request(anon, { type: 'publish', channel: 'msg', event: 'e' })).code, 'bad_channel')
    })

    test('client publishing is rate-limited per connection and the connection stays usable', async (t) => {
      const { url } = await appOn(t, backend, { publishRate: 5, publishBurst: 3 })
      const a = await member(url, null, ['web_r'])
      const b = await member(url, null, ['web_r'])
      t.after(() => Promise.all([a.close(), b.close()]))
      const replies = await Promise.all(Array.from({ length: 8 }, () => request(a, { type: 'publish', channel: 'web_r', event: 'e' })))
      assert.deepEqual(replies.map((r) => r.type === 'published' ? 'ok' : r.code), ['ok', 'ok', 'ok', 'rate_limited', 'rate_limited', 'rate_limited', 'rate_limited', 'rate_limited'])
      assert.equal((await request(b, { type: 'publish', channel: 'web_r', event: 'e' })).type, 'published', 'another connection has its own bucket')
      assert.equal((await request(a, { type: 'ping' })).type, 'pong')
      await sleep(250)
      assert.equal((await request(a, { type: 'publish', channel: 'web_r', event: 'e' })).type, 'published', 'tokens come back at the rate')
      await eventually(() => b.messages('web_r').length === 4, 'only published messages were sent')
    })

    test('onClientPublish can veto or transform a message, and sees the stamped userId', async (t) => {
      const seen: unknown[] = []
      const { app, url } = await appOn(t, backend, {
        async onClientPublish (ctx) {
          seen.push({ ...ctx })
          await sleep(5)
          if (ctx.event === 'spam') return false
          if (ctx.event === 'shout') return { event: 'say', data: String(ctx.data).toUpperCase() }
          if (ctx.event === 'boom') throw new Error('hook failed')
        }
      })
      await app.comet.registerAuth('carol', HASH)
      const carol = await member(url, 'carol')
      const reader = await member(url, null, ['web_h'])
      t.after(() => Promise.all([carol.close(), reader.close()]))
      assert.equal((await request(carol, { type: 'publish', channel: 'web_h', event: 'spam', data: 1 })).code, 'rejected')
      assert.equal((await request(carol, { type: 'publish', channel: 'web_h', event: 'boom', data: 1 })).code, 'rejected')
      const ok = await request(carol, { type: 'publish', channel: 'web_h', event: 'shout', data: 'hey' })
      const m = await reader.next((f) => f.type === 'message')
      assert.deepEqual([m.event, m.data, m.userId, m.id], ['say', 'HEY', 'carol', ok.id])
      assert.deepEqual(seen[0], { channel: 'web_h', kind: 'web', event: 'spam', data: 1, userId: 'carol', claims: null })
      await sleep(50)
      assert.equal(reader.messages('web_h').length, 1, 'vetoed messages were not sent')
    })

    test('track_: authorized members only, join on the first tab, leave after the last tab and the grace period', async (t) => {
      const { app, url } = await appOn(t, backend, { presenceGrace: GRACE })
      for (const u of ['ann', 'ben']) await app.comet.registerAuth(u, HASH)
      const anon = await member(url, null)
      t.after(() => anon.close())
      assert.equal((await request(anon, { type: 'subscribe', channel: 'track_room' })).code, 'forbidden')

      const ann = await member(url, 'ann', ['track_room'])
      t.after(() => ann.close())
      assert.deepEqual((await request(ann, { type: 'members', channel: 'track_room' })).members, ['ann'])
      const ben1 = await member(url, 'ben', ['track_room'])
      const ben2 = await member(url, 'ben', ['track_room'])
      const join = await ann.next((f) => f.type === 'join' && f.userId === 'ben')
      assert.deepEqual(join, { type: 'join', channel: 'track_room', userId: 'ben' })
      assert.deepEqual(events(ann, 'join', 'track_room')[0], { type: 'join', channel: 'track_room', userId: 'ann' }, 'a member sees its own join too')
      assert.deepEqual((await app.comet.members('track_room')).sort(), ['ann', 'ben'])
      assert.deepEqual(await app.comet.channelStats('track_room'), { subscribers: 3, users: 2 })

      await ben1.close()
      await sleep(GRACE + 200)
      assert.equal(events(ann, 'leave', 'track_room').length, 0, 'ben still has a tab')
      const left = Date.now()
      await ben2.close()
      await ann.next((f) => f.type === 'leave')
      assert.ok(Date.now() - left >= GRACE - 20, `leave came after the grace period (${Date.now() - left} ms)`)
      assert.deepEqual(events(ann, 'join', 'track_room').length, 2, 'one join each for ann and ben')
      assert.deepEqual(events(ann, 'leave', 'track_room'), [{ type: 'leave', channel: 'track_room', userId: 'ben' }])
      assert.deepEqual(await app.comet.members('track_room'), ['ann'])
    })

    test('track_: a reload within the grace period sends neither leave nor join', async (t) => {
      const { app, url } = await appOn(t, backend, { presenceGrace: GRACE })
      for (const u of ['ann', 'ben']) await app.comet.registerAuth(u, HASH)
      const ann = await member(url, 'ann', ['track_room'])
      const ben = await member(url, 'ben', ['track_room'])
      await ann.next((f) => f.type === 'join' && f.userId === 'ben')
      await ben.close()
      await sleep(GRACE / 3)
      const again = await member(url, 'ben', ['track_room'])
      t.after(() => Promise.all([ann.close(), again.close()]))
      assert.deepEqual((await request(again, { type: 'members', channel: 'track_room' })).members.sort(), ['ann', 'ben'], 'ben counts as a member during the grace period')
      await sleep(GRACE + 200)
      assert.equal(events(ann, 'join', 'track_room').filter((f) => f.userId === 'ben').length, 1)
      assert.equal(events(ann, 'leave', 'track_room').length, 0)
      // Unsubscribing (not closing) leaves too.
      await request(again, { type: 'unsubscribe', channel: 'track_room' })
      await ann.next((f) => f.type === 'leave')
    })

    test('user_status_: online on the first device, offline after the last one and the grace period', async (t) => {
      const { app, url } = await appOn(t, backend, { presenceGrace: GRACE })
      await app.comet.registerAuth('dan', HASH)
      const watcher = await member(url, null, ['user_status_dan'])
      t.after(() => watcher.close())
      assert.deepEqual((await request(watcher, { type: 'members', channel: 'user_status_dan' })).members, [])
      const d1 = await member(url, 'dan')
      const d2 = await member(url, 'dan')
      assert.deepEqual(await watcher.next((f) => f.type === 'online'), { type: 'online', channel: 'user_status_dan', userId: 'dan' })
      assert.deepEqual(await app.comet.members('user_status_dan'), ['dan'])
      await d1.close()
      await sleep(GRACE + 200)
      assert.equal(events(watcher, 'offline', 'user_status_dan').length, 0)
      await d2.close()
      // A reload within the grace period does not flap.
      const d3 = await member(url, 'dan')
      await sleep(GRACE + 200)
      assert.equal(events(watcher, 'offline', 'user_status_dan').length, 0)
      await d3.close()
      await watcher.next((f) => f.type === 'offline')
      assert.equal(events(watcher, 'online', 'user_status_dan').length, 1)
      assert.deepEqual(await app.comet.members('user_status_dan'), [])
    })

    test('canSubscribe restricts who may watch whom; without it private_ is the owner\'s only', async (t) => {
      const { app, url } = await appOn(t, backend)
      for (const u of ['eve', 'fay']) await app.comet.registerAuth(u, HASH)
      const eve = await member(url, 'eve')
      const anon = await member(url, null)
      t.after(() => Promise.all([eve.close(), anon.close()]))
      assert.equal((await request(eve, { type: 'subscribe', channel: 'private_eve' })).type, 'subscribed')
      for (const channel of ['private_fay', 'private_eve_x', 'private_ev']) {
        assert.equal((await request(eve, { type: 'subscribe', channel })).code, 'forbidden', channel)
      }
      assert.equal((await request(anon, { type: 'subscribe', channel: 'private_eve' })).code, 'forbidden')
      assert.equal((await request(anon, { type: 'subscribe', channel: 'user_status_eve' })).type, 'subscribed', 'default: anyone may watch')

      const calls: unknown[] = []
      const hooked = await appOn(t, backend, {
        async canSubscribe (ctx) {
          calls.push(ctx)
          if (ctx.kind === 'user_status') return ctx.userId === 'fay'
          if (ctx.kind === 'private') return ctx.channel.startsWith(`private_${ctx.userId ?? ''}_`)
          if (ctx.channel === 'broken') throw new Error('hook failed')
          return true
        }
      })
      for (const u of ['eve', 'fay']) await hooked.app.comet.registerAuth(u, HASH)
      const eve2 = await member(hooked.url, 'eve')
      const fay2 = await member(hooked.url, 'fay')
      t.after(() => Promise.all([eve2.close(), fay2.close()]))
      assert.equal((await request(eve2, { type: 'subscribe', channel: 'user_status_fay' })).code, 'forbidden')
      assert.equal((await request(fay2, { type: 'subscribe', channel: 'user_status_eve' })).type, 'subscribed')
      assert.equal((await request(eve2, { type: 'members', channel: 'user_status_fay' })).code, 'forbidden', 'members follows canSubscribe')
      assert.equal((await request(eve2, { type: 'subscribe', channel: 'private_eve_inbox' })).type, 'subscribed')
      assert.equal((await request(eve2, { type: 'subscribe', channel: 'private_eve' })).code, 'forbidden', 'the hook replaces the default')
      assert.equal((await request(eve2, { type: 'subscribe', channel: 'broken' })).code, 'forbidden', 'a throwing hook refuses')
      assert.equal((await request(eve2, { type: 'subscribe', channel: 'news' })).type, 'subscribed')
      assert.deepEqual(calls[0], { channel: 'user_status_fay', kind: 'user_status', userId: 'eve', claims: null })
    })

    test('history: missed messages in order, or recovered: false, never a partial list', async (t) => {
      const { app, url } = await appOn(t, backend, { history: { news: { size: 10, ttl: 60_000 }, 'web_*': { size: 5 } } })
      const ids: string[] = []
      for (let i = 0; i < 300; i++) ids.push((await app.comet.publish('news', 'n', i)).id)
      const reader = await member(url, null)
      t.after(() => reader.close())
      const recent = await request(reader, { type: 'history', channel: 'news', since: ids[295] })
      assert.equal(recent.recovered, true)
      assert.deepEqual(recent.messages.map((m: { data: number }) => m.data), [296, 297, 298, 299])
      assert.deepEqual(recent.messages[0], { type: 'message', channel: 'news', event: 'n', data: 296, id: ids[296] })
      assert.deepEqual(await request(reader, { type: 'history', channel: 'news', since: ids[299] }), { type: 'history', channel: 'news', recovered: true, messages: [], ref: recent.ref.replace(/\d+$/, (n: string) => String(Number(n) + 1)) })
      for (const since of [ids[0], 'nonsense', '1-0', '99999999999999999999-0']) {
        const old = await request(reader, { type: 'history', channel: 'news', since })
        assert.deepEqual([old.recovered, old.messages], [false, []], String(since))
      }
      const all = await app.comet.history('news')
      assert.equal(all.recovered, true)
      const data = all.messages.map((m) => m.data as number)
      assert.ok(data.length >= 10, 'at least size messages are kept')
      assert.deepEqual(data, Array.from({ length: data.length }, (_, i) => 300 - data.length + i), 'the newest, consecutive, in order')
      assert.deepEqual((await app.comet.history('news', ids[297])).messages.map((m) => m.id), [ids[298], ids[299]])

      // Client publishes on a channel with history are kept too, with their sender.
      const writer = await member(url, null)
      t.after(() => writer.close())
      const sent = await request(writer, { type: 'publish', channel: 'web_log', event: 'say', data: 'kept' })
      const kept = await app.comet.history('web_log')
      assert.deepEqual(kept.messages, [{ type: 'message', channel: 'web_log', event: 'say', data: 'kept', userId: null, id: sent.id }])
      assert.equal((await request(reader, { type: 'history', channel: 'other' })).code, 'no_history')
      await assert.rejects(app.comet.history('other'), { code: 'FST_ERR_COMET_HISTORY' })
    })

    test('channelStats and channels() count subscribers and distinct users', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('gus', HASH)
      await app.comet.registerAuth('hal', HASH)
      const clients = await Promise.all([
        member(url, 'gus', ['lobby', 'web_chat']), member(url, 'gus', ['lobby']), member(url, 'hal', ['lobby']),
        member(url, null, ['lobby']), member(url, null, ['lobby'])
      ])
      t.after(() => Promise.all(clients.map((c) => c.close())))
      assert.deepEqual(await app.comet.channelStats('lobby'), { subscribers: 5, users: 2 })
      assert.deepEqual(await app.comet.channelStats('empty'), { subscribers: 0, users: 0 })
      assert.deepEqual(await app.comet.channels(), [
        { channel: 'lobby', subscribers: 5, users: 2 },
        { channel: 'web_chat', subscribers: 1, users: 1 }
      ])
      await request(clients[0]!, { type: 'unsubscribe', channel: 'web_chat' })
      await eventually(async () => (await app.comet.channelStats('web_chat')).subscribers === 0, 'unsubscribed')
      assert.deepEqual((await app.comet.channels()).map((c) => c.channel), ['lobby'])
      await clients[3]!.close()
      await eventually(async () => (await app.comet.channelStats('lobby')).subscribers === 4, 'closed socket no longer counts')
    })
  })
}

test('channel options are checked at register time', async () => {
  const { startApp } = await import('./helpers/app.ts')
  const bad: Array<[string, Record<string, unknown>]> = [
    ['negative grace', { presenceGrace: -1 }],
    ['zero rate', { publishRate: 0 }],
    ['fractional burst', { publishBurst: 1.5 }],
    ['history not an object', { history: [] }],
    ['history pattern with a dot', { history: { 'a.b': { size: 1 } } }],
    ['history without size', { history: { news: {} } }],
    ['history entry not an object', { history: { news: 5 } }],
    ['history ttl zero', { history: { news: { size: 1, ttl: 0 } } }],
    ['canSubscribe not a function', { canSubscribe: true }],
    ['onClientPublish not a function', { onClientPublish: 'x' }]
  ]
  for (const [what, options] of bad) {
    await assert.rejects(startApp(options, false), { code: 'FST_ERR_COMET_OPTIONS' }, what)
  }
})

test('the channel API rejects bad arguments with coded errors', async (t) => {
  const { app } = await appOn(t, 'memory', { history: { news: { size: 5 } } })
  await assert.rejects(app.comet.members('msg'), { code: 'FST_ERR_COMET_CHANNEL' })
  await assert.rejects(app.comet.channelStats('a b'), { code: 'FST_ERR_COMET_CHANNEL' })
  await assert.rejects(app.comet.history('news', 5 as unknown as string), { code: 'FST_ERR_COMET_HISTORY' })
  assert.deepEqual(await app.comet.history('news'), { recovered: true, messages: [] })
  await app.close()
  await assert.rejects(app.comet.channels(), { code: 'FST_ERR_COMET_CLOSED' })
})
