import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { CometClient, CometClientError } from '../../lib/client/index.ts'
import type { CometClientOptions, CometMessage, CometStatus, StatusInfo } from '../../lib/client/index.ts'
import { fakeServer, privateMessage } from './fake-socket.ts'

const HASH = 'a-long-enough-secret-hash'

const mocked = new WeakSet<TestContext>()

/** A client on fake sockets and fake timers, with every status it reported. */
function setup (t: TestContext, options: Partial<CometClientOptions> = {}) {
  // A test may start several clients (the pages of one tab).
  if (!mocked.has(t)) {
    mocked.add(t)
    t.mock.timers.enable({ apis: ['setTimeout', 'setInterval'] })
    t.mock.method(Math, 'random', () => 0.5)
  }
  const server = fakeServer()
  const statuses: Array<[CometStatus, StatusInfo]> = []
  const client = new CometClient({ url: 'ws://example.test/comet', userId: '42', hash: HASH, WebSocket: server.WebSocket, pingInterval: 0, window: null, ...options })
  client.on('status', (status, info) => statuses.push([status, info]))
  t.after(() => client.close())
  return { client, server, statuses }
}

test('authenticates with the first frame and reports open on ready', (t) => {
  const { client, server, statuses } = setup(t)
  assert.equal(server.sockets.length, 1)
  assert.equal(server.last().url, 'ws://example.test/comet')
  assert.equal(client.status, 'connecting')
  const auth = server.last().accept()
  assert.deepEqual(auth, { type: 'auth', ref: auth['ref'], userId: '42', hash: HASH })
  assert.equal(client.status, 'open')
  assert.deepEqual(statuses, [['open', {}]])
})

test('without userId the connection is anonymous', (t) => {
  const { server } = setup(t, { userId: undefined, hash: undefined })
  const auth = server.last().accept(null)
  assert.deepEqual(Object.keys(auth).sort(), ['ref', 'type'])
})

test('checks its options up front', () => {
  const { WebSocket } = fakeServer()
  assert.throws(() => new CometClient({ url: 'ws://x/comet', userId: 'a b', hash: HASH, WebSocket }), /userId must match/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet', userId: '42', WebSocket }), /hash is required/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet', hash: HASH, WebSocket }), /without userId/)
  assert.throws(() => new CometClient({ url: '/comet', WebSocket }), /url must start with/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet', WebSocket, since: 'abc' }), /since must be/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet', WebSocket, pingInterval: -1 }), /pingInterval/)
  assert.throws(() => new CometClient({ url: 'ws://x/comet' }), /no WebSocket implementation/)
})

test('http(s) URLs become ws(s)', (t) => {
  const { server } = setup(t, { url: 'https://example.test/comet' })
  assert.equal(server.last().url, 'wss://example.test/comet')
})

test('routes messages by topic: msg, msg.<event>, <channel>, <channel>.<event>', (t) => {
  const { client, server } = setup(t)
  const got: Record<string, string[]> = { msg: [], msgEvent1: [], news: [], newsUpdate: [] }
  const label = (m: CometMessage): string => `${m.channel}.${m.event}#${m.id}`
  client.subscribe('msg', (m) => got['msg']?.push(label(m)))
  client.subscribe('msg.event1', (m) => got['msgEvent1']?.push(label(m)))
  client.subscribe('news', (m) => got['news']?.push(label(m)))
  client.subscribe('news.update', (m) => got['newsUpdate']?.push(label(m)))
  const socket = server.last()
  socket.accept()
  socket.receive(privateMessage(1, 'event1'))
  socket.receive(privateMessage(2, 'event2'))
  socket.receive({ type: 'message', channel: 'news', event: 'update', data: 1, id: 'a' })
  socket.receive({ type: 'message', channel: 'news', event: 'other', data: 2, id: 'b' })
  socket.receive({ type: 'message', channel: 'sport', event: 'update', data: 3, id: 'c' })
  assert.deepEqual(got, {
    msg: ['msg.event1#1', 'msg.event2#2'],
    msgEvent1: ['msg.event1#1'],
    news: ['news.update#a', 'news.other#b'],
    newsUpdate: ['news.update#a']
  })
})

test('delivers the message as data, and ignores frames that are not JSON objects', (t) => {
  const { client, server } = setup(t)
  const got: unknown[] = []
  client.subscribe('msg', (m) => got.push(m))
  const socket = server.last()
  socket.accept()
  socket.receive('not json')
  socket.receive('[1,2]')
  socket.receive('null')
  socket.receive({ type: 'message', channel: 'msg', event: 'e', data: 'alert(1)' })
  socket.receive({ type: 'message', channel: 'msg', event: 'e', data: 'alert(1)', id: '5' })
  assert.deepEqual(got, [{ channel: 'msg', event: 'e', data: 'alert(1)', id: '5' }])
})

test('subscribes to a channel once per channel, after ready, and unsubscribes when the last callback goes', (t) => {
  const { client, server } = setup(t)
  const offA = client.subscribe('news', () => {})
  const offB = client.subscribe('news.update', () => {})
  const offMsg = client.subscribe('msg', () => {})
  const socket = server.last()
  socket.open()
  assert.deepEqual(socket.sent.map((f) => f.type), ['auth'], 'nothing before ready')
  socket.receive({ type: 'ready', userId: '42', queued: 0, dropped: 0, ref: socket.sent[0]?.['ref'] })
  assert.deepEqual(socket.frames('subscribe').map((f) => f['channel']), ['news'], 'msg needs no subscription')
  offA()
  assert.equal(socket.frames('unsubscribe').length, 0, 'news.update still listens')
  offB()
  offB()
  offMsg()
  assert.deepEqual(socket.frames('unsubscribe'), [{ type: 'unsubscribe', channel: 'news' }])
  client.subscribe('sport', () => {})
  assert.deepEqual(socket.frames('subscribe').map((f) => f['channel']), ['news', 'sport'])
})

test('reconnects with full-jitter backoff, resubscribes, and sends the last private id as since', (t) => {
  const { client, server, statuses } = setup(t)
  client.subscribe('news', () => {})
  client.subscribe('msg', () => {})
  server.last().accept()
  server.last().receive(privateMessage('1764363600000007'))
  server.last().drop(1006)
  assert.deepEqual(statuses.at(-1), ['connecting', { code: 1006, retryIn: 500 }], 'random 0.5 of a 1 s ceiling')
  t.mock.timers.tick(499)
  assert.equal(server.sockets.length, 1)
  t.mock.timers.tick(1)
  assert.equal(server.sockets.length, 2)
  const auth = server.last().accept()
  assert.equal(auth['since'], '1764363600000007')
  assert.deepEqual(server.last().frames('subscribe').map((f) => f['channel']), ['news'])
  assert.equal(client.status, 'open')
})

test('backoff doubles per failed attempt up to 30 s, and starts over after a success', (t) => {
  const { server, statuses } = setup(t)
  for (let i = 0; i < 8; i++) {
    server.last().drop(1006)
    const retryIn = statuses.at(-1)?.[1].retryIn ?? 0
    t.mock.timers.tick(retryIn)
  }
  assert.deepEqual(statuses.map(([, info]) => info.retryIn), [500, 1000, 2000, 4000, 8000, 15_000, 15_000, 15_000])
  server.last().accept()
  server.last().drop(1001)
  assert.deepEqual(statuses.at(-1), ['connecting', { code: 1001, retryIn: 500 }])
})

test('a connection attempt that never gets ready is given up and retried', (t) => {
  const { server } = setup(t, { connectTimeout: 5000 })
  const first = server.last()
  first.open()
  t.mock.timers.tick(5000)
  assert.equal(first.closedWith?.code, 4000)
  t.mock.timers.tick(500)
  assert.equal(server.sockets.length, 2)
})

test('does not retry after 4401: authentication failed', (t) => {
  const { client, server, statuses } = setup(t)
  server.last().accept()
  server.last().drop(4401)
  assert.equal(client.status, 'auth-failed')
  assert.deepEqual(statuses.at(-1), ['auth-failed', { code: 4401 }])
  t.mock.timers.tick(120_000)
  assert.equal(server.sockets.length, 1)
})

test('does not retry after 4409: this device was replaced, and coming back would evict the other one', (t) => {
  const { client, server, statuses } = setup(t)
  server.last().accept()
  server.last().drop(4409)
  assert.equal(client.status, 'closed')
  assert.deepEqual(statuses.at(-1), ['closed', { code: 4409 }])
  t.mock.timers.tick(120_000)
  assert.equal(server.sockets.length, 1)
})

test('retries after the other close codes: 1001, 1008, 1009, 1012, 1013, 4408, 4413, 4429', (t) => {
  const { server } = setup(t)
  for (const code of [1001, 1008, 1009, 1012, 1013, 4408, 4413, 4429]) {
    const before = server.sockets.length
    server.last().drop(code)
    t.mock.timers.tick(30_000)
    assert.equal(server.sockets.length, before + 1, `reconnects after ${code}`)
  }
})

test('an unavailable store during auth is retried; another refusal of the auth frame is final', (t) => {
  const { client, server } = setup(t)
  server.last().open()
  server.last().receive({ type: 'error', code: 'unavailable', message: 'retry later', ref: server.last().sent[0]?.['ref'] })
  t.mock.timers.tick(500)
  assert.equal(server.sockets.length, 2)
  const errors: string[] = []
  client.on('error', (e) => errors.push(e.code))
  server.last().open()
  server.last().receive({ type: 'error', code: 'bad_frame', message: 'bad', ref: server.last().sent[0]?.['ref'] })
  assert.equal(client.status, 'auth-failed')
  assert.deepEqual(errors, ['bad_frame'])
  t.mock.timers.tick(120_000)
  assert.equal(server.sockets.length, 2)
})

test('close() stops for good: no retry, the socket closed with 1000', (t) => {
  const { client, server, statuses } = setup(t)
  server.last().accept()
  client.close()
  client.close()
  assert.equal(server.last().closedWith?.code, 1000)
  assert.equal(client.status, 'closed')
  assert.deepEqual(statuses.at(-1), ['closed', {}])
  server.last().drop(1006)
  t.mock.timers.tick(120_000)
  assert.equal(server.sockets.length, 1)
})

test('close() while waiting to retry cancels the retry', (t) => {
  const { client, server } = setup(t)
  server.last().drop(1006)
  client.close()
  t.mock.timers.tick(120_000)
  assert.equal(server.sockets.length, 1)
})

test('the browser coming back online retries at once', (t) => {
  const window = new EventTarget()
  const { client, server } = setup(t, { window })
  server.last().drop(1006)
  server.last().drop(1006)
  window.dispatchEvent(new Event('online'))
  assert.equal(server.sockets.length, 2, 'no timer needed')
  window.dispatchEvent(new Event('online'))
  assert.equal(server.sockets.length, 2, 'already connecting: nothing to hurry')
  client.close()
  window.dispatchEvent(new Event('online'))
  assert.equal(server.sockets.length, 2, 'closed: online is ignored')
})

test('drops a private message whose id is not above the last one seen, comparing as numbers', (t) => {
  const { client, server } = setup(t)
  const ids: string[] = []
  client.subscribe('msg', (m) => ids.push(m.id))
  const socket = server.last()
  socket.accept()
  for (const id of ['998', '999', '999', '1000', '998', '1001']) socket.receive(privateMessage(id))
  socket.drop(1006)
  t.mock.timers.tick(500)
  server.last().accept()
  // A resume that replays what was already seen.
  for (const id of ['1000', '1001', '1002']) server.last().receive(privateMessage(id))
  assert.deepEqual(ids, ['998', '999', '1000', '1001', '1002'])
  assert.equal(client.lastMessageId, '1002')
})

test('ready.last becomes the resume point once the stored messages it announced are in, even with none', (t) => {
  const { client, server } = setup(t)
  const ids: string[] = []
  client.subscribe('msg', (m) => ids.push(m.id))
  server.last().accept('42', { last: '2000' })
  assert.equal(client.lastMessageId, '2000', 'nothing stored: in sync with last at once')
  server.last().drop(1006)
  t.mock.timers.tick(500)
  assert.equal(server.last().accept('42', { queued: 2, last: '3000' })['since'], '2000')
  server.last().receive(privateMessage('2500'))
  assert.equal(client.lastMessageId, '2500', 'one stored message still to come')
  server.last().drop(1006)
  t.mock.timers.tick(1000)
  assert.equal(server.last().accept('42', { queued: 1, last: '3100' })['since'], '2500', 'a cut backlog resumes from what arrived')
  server.last().receive(privateMessage('3000'))
  assert.equal(client.lastMessageId, '3100')
  server.last().receive(privateMessage('3100'))
  server.last().receive(privateMessage('3200'))
  assert.deepEqual(ids, ['2500', '3000', '3200'], 'the resume point is seen: nothing at or below it is delivered again')
})

test('since: ids up to it are treated as seen and it is sent on the first connect', (t) => {
  const { client, server } = setup(t, { since: '500' })
  const ids: string[] = []
  client.subscribe('msg', (m) => ids.push(m.id))
  const auth = server.last().accept()
  assert.equal(auth['since'], '500')
  for (const id of ['499', '500', '501']) server.last().receive(privateMessage(id))
  assert.deepEqual(ids, ['501'])
})

/** A tab's sessionStorage, as the client finds it on globalThis. */
function tabStorage (t: TestContext): Map<string, string> {
  const items = new Map<string, string>()
  const g = globalThis as { sessionStorage?: unknown }
  g.sessionStorage = { getItem: (k: string) => items.get(k) ?? null, setItem: (k: string, v: string) => { items.set(k, v) } }
  t.after(() => { delete g.sessionStorage })
  return items
}

test('persistLastId: the last id is kept per URL and user in sessionStorage, and a new client in the tab resumes from it', (t) => {
  const items = tabStorage(t)
  const first = setup(t)
  first.server.last().accept('42', { last: '1000' })
  assert.deepEqual([...items], [['fastify-comet:last ws://example.test/comet 42', '1000']], 'ready.last, at once')
  first.server.last().receive(privateMessage('1500'))
  assert.equal(items.get('fastify-comet:last ws://example.test/comet 42'), '1500', 'each id as it is delivered')
  first.client.close()

  // The reloaded page: a new client, same URL and user.
  const second = setup(t)
  const ids: string[] = []
  second.client.subscribe('msg', (m) => ids.push(m.id))
  assert.equal(second.client.lastMessageId, '1500')
  assert.equal(second.server.last().accept('42', { last: '1500' })['since'], '1500')
  for (const id of ['1500', '1600']) second.server.last().receive(privateMessage(id))
  assert.deepEqual(ids, ['1600'], 'what the previous page got is not handed over again')

  // Another user, or another URL, starts fresh; an explicit since wins over the kept id.
  assert.equal(setup(t, { userId: '7' }).server.last().accept('7')['since'], undefined)
  assert.equal(setup(t, { url: 'ws://other.test/comet' }).server.last().accept('42')['since'], undefined)
  assert.equal(setup(t, { since: '1200' }).server.last().accept('42')['since'], '1200')
})

test('persistLastId on a page that names no user (a token, the upgrade hook): kept as "<user> <id>" under the URL, sent with sinceUser; another user starts fresh', (t) => {
  const items = tabStorage(t)
  const key = 'fastify-comet:last ws://example.test/comet'
  const hooked = { userId: undefined, hash: undefined }
  const first = setup(t, hooked)
  first.server.last().accept('42', { last: '1000' })
  first.server.last().receive(privateMessage('1500'))
  assert.equal(items.get(key), '42 1500')
  first.client.close()

  const same = setup(t, hooked)
  const auth = same.server.last().accept('42', { last: '1500' })
  assert.deepEqual([auth['since'], auth['sinceUser']], ['1500', '42'])
  same.client.close()

  // The session now belongs to user 7: the server ignores 42's id, and so does the client.
  const other = setup(t, hooked)
  const ids: string[] = []
  other.client.subscribe('msg', (m) => ids.push(m.id))
  other.server.last().accept('7', { last: '300' })
  other.server.last().receive(privateMessage('400'))
  assert.deepEqual(ids, ['400'], 'an id below 42\'s is not taken as seen')
  assert.equal(items.get(key), '7 400')
})

test('persistLastId: false keeps nothing in storage; anonymous clients keep nothing; a bad value is refused', (t) => {
  const items = tabStorage(t)
  const off = setup(t, { persistLastId: false })
  off.server.last().accept('42', { last: '1000' })
  off.server.last().receive(privateMessage('1500'))
  assert.equal(off.client.lastMessageId, '1500')
  const anonymous = setup(t, { userId: undefined, hash: undefined })
  anonymous.server.last().accept(null, { last: '900' })
  assert.deepEqual([...items], [])
  items.set('fastify-comet:last ws://example.test/comet 42', 'not an id')
  assert.equal(setup(t).server.last().accept('42')['since'], undefined, 'a value that is not an id is ignored')
  const { WebSocket } = fakeServer()
  assert.throws(() => new CometClient({ url: 'ws://x/comet', userId: '42', hash: HASH, WebSocket, persistLastId: 'yes' as unknown as boolean }), /persistLastId must be true or false/)
})

test('a callback that throws does not stop the others', (t) => {
  const reported: unknown[] = []
  const { client, server } = setup(t)
  const g = globalThis as { reportError?: (e: unknown) => void }
  g.reportError = (e) => reported.push(e)
  t.after(() => { delete g.reportError })
  const ids: string[] = []
  client.subscribe('msg', () => { throw new Error('boom') })
  client.subscribe('msg', (m) => ids.push(m.id))
  server.last().accept()
  server.last().receive(privateMessage(1))
  assert.deepEqual(ids, ['1'])
  assert.equal((reported[0] as Error).message, 'boom')
})

test('publish() waits for ready, and resolves with the id from the reply carrying its ref', async (t) => {
  const { client, server } = setup(t)
  const id = client.publish('web_chat', 'say', { text: 'hi' })
  const socket = server.last()
  socket.accept()
  const [frame] = socket.frames('publish')
  assert.deepEqual(frame, { type: 'publish', channel: 'web_chat', event: 'say', data: { text: 'hi' }, ref: frame?.['ref'] })
  socket.receive({ type: 'published', id: 'abc-1', ref: 999 })
  socket.receive({ type: 'published', id: 'abc-2', ref: frame?.['ref'] })
  assert.equal(await id, 'abc-2')
})

test('members() resolves with the member list', async (t) => {
  const { client, server } = setup(t)
  const socket = server.last()
  socket.accept()
  const members = client.members('track_room')
  const [frame] = socket.frames('members')
  assert.deepEqual(frame, { type: 'members', channel: 'track_room', ref: frame?.['ref'] })
  socket.receive({ type: 'members', channel: 'track_room', members: ['1', '2'], ref: frame?.['ref'] })
  assert.deepEqual(await members, ['1', '2'])
})

test('requests: an error reply rejects with its code; a drop, a timeout and close() reject too', async (t) => {
  const { client, server } = setup(t, { requestTimeout: 1000 })
  const socket = server.last()
  socket.accept()
  const refused = client.publish('news', 'say', 1)
  socket.receive({ type: 'error', code: 'unknown_type', message: 'nope', ref: socket.frames('publish')[0]?.['ref'] })
  await assert.rejects(refused, (e: CometClientError) => e instanceof CometClientError && e.code === 'unknown_type')

  const dropped = client.members('track_a')
  socket.drop(1006)
  await assert.rejects(dropped, { code: 'disconnected' })

  const late = client.members('track_a')
  const lateHistory = client.history('news')
  t.mock.timers.tick(1000)
  await assert.rejects(late, { code: 'timeout' })
  await assert.rejects(lateHistory, { code: 'timeout' }, 'requestTimeout covers history() too')

  const waiting = client.members('track_a')
  client.close()
  await assert.rejects(waiting, { code: 'closed' })
  await assert.rejects(client.members('track_a'), { code: 'closed' })
  await assert.rejects(client.publish('bad name', 'e'), TypeError)
})

test('a subscription the server refuses is reported with its channel', (t) => {
  const { client, server } = setup(t)
  const errors: unknown[] = []
  client.on('error', (e) => errors.push(e))
  client.subscribe('news', () => {})
  const socket = server.last()
  socket.accept()
  socket.receive({ type: 'error', code: 'too_many_subscriptions', message: 'at most 64', ref: socket.frames('subscribe')[0]?.['ref'] })
  socket.receive({ type: 'error', code: 'bad_json', message: 'x' })
  assert.deepEqual(errors, [
    { code: 'too_many_subscriptions', message: 'at most 64', channel: 'news' },
    { code: 'bad_json', message: 'x' }
  ])
})

test('ready info is reported', (t) => {
  const { client, server } = setup(t)
  const ready: unknown[] = []
  client.on('ready', (info) => ready.push(info))
  server.last().accept('42', { queued: 3, dropped: 1 })
  server.last().drop(1006)
  t.mock.timers.tick(500)
  server.last().accept('42', { queued: 0, dropped: 0, recovered: false })
  assert.deepEqual(ready, [{ userId: '42', queued: 3, dropped: 1 }, { userId: '42', queued: 0, dropped: 0, recovered: false }])
})

test('pings while open and replaces a socket that went silent', (t) => {
  const { server } = setup(t, { pingInterval: 10_000 })
  const socket = server.last()
  socket.accept()
  t.mock.timers.tick(10_000)
  const [ping] = socket.frames('ping')
  assert.ok(ping)
  socket.receive({ type: 'pong', ref: ping['ref'] })
  t.mock.timers.tick(10_000)
  assert.equal(socket.frames('ping').length, 2)
  const closeCode = (): number | undefined => socket.closedWith?.code
  assert.equal(closeCode(), undefined, 'answered: still in use')
  t.mock.timers.tick(10_000)
  assert.equal(closeCode(), 4000, 'the second ping got nothing back')
  t.mock.timers.tick(500)
  assert.equal(server.sockets.length, 2)
})

test('presence frames reach subscribers as events of their channel, and client-published messages carry the sender', (t) => {
  const { client, server } = setup(t)
  const got: CometMessage[] = []
  const joins: string[] = []
  client.subscribe('track_room', (m) => got.push(m))
  client.subscribe('track_room.join', (m) => joins.push(String(m.userId)))
  client.subscribe('web_chat', (m) => got.push(m))
  const socket = server.last()
  socket.accept()
  socket.receive({ type: 'join', channel: 'track_room', userId: '7' })
  socket.receive({ type: 'leave', channel: 'track_room', userId: '7' })
  socket.receive({ type: 'join', channel: 'track_room' })
  socket.receive({ type: 'message', channel: 'web_chat', event: 'say', data: { text: 'hi' }, userId: '7', id: 'x.1' })
  socket.receive({ type: 'message', channel: 'web_chat', event: 'say', data: 'anon', userId: null, id: 'x.2' })
  assert.deepEqual(got, [
    { channel: 'track_room', event: 'join', data: null, id: '', userId: '7' },
    { channel: 'track_room', event: 'leave', data: null, id: '', userId: '7' },
    { channel: 'web_chat', event: 'say', data: { text: 'hi' }, id: 'x.1', userId: '7' },
    { channel: 'web_chat', event: 'say', data: 'anon', id: 'x.2', userId: null }
  ])
  assert.deepEqual(joins, ['7'])
})

test('after ready, subscriptions are sent before any request, also one made by a ready listener', (t) => {
  const { client, server } = setup(t)
  client.subscribe('track_room', () => {})
  const early = client.members('track_room')
  let fromListener: Promise<string[]> | undefined
  client.on('ready', () => { fromListener = client.members('track_room') })
  const socket = server.last()
  socket.accept()
  assert.deepEqual(socket.sent.slice(1).map((f) => f.type), ['subscribe', 'members', 'members'])
  for (const frame of socket.frames('members')) socket.receive({ type: 'members', channel: 'track_room', members: ['42'], ref: frame['ref'] })
  return Promise.all([early, fromListener]).then(([a, b]) => {
    assert.deepEqual(a, ['42'])
    assert.deepEqual(b, ['42'])
  })
})

test('history() sends since when given and returns the kept messages', async (t) => {
  const { client, server } = setup(t)
  const socket = server.last()
  socket.accept()
  const all = client.history('news')
  const after = client.history<number>('news', '1764363600000-3')
  const [first, second] = socket.frames('history')
  assert.deepEqual(first, { type: 'history', channel: 'news', ref: first?.['ref'] })
  assert.deepEqual(second, { type: 'history', channel: 'news', since: '1764363600000-3', ref: second?.['ref'] })
  socket.receive({ type: 'history', channel: 'news', recovered: false, messages: [], ref: first?.['ref'] })
  socket.receive({
    type: 'history',
    channel: 'news',
    recovered: true,
    messages: [{ type: 'message', channel: 'news', event: 'e', data: 1, id: '1764363600001-0' }, { bad: true }],
    ref: second?.['ref']
  })
  assert.deepEqual(await all, { recovered: false, messages: [] })
  assert.deepEqual(await after, { recovered: true, messages: [{ channel: 'news', event: 'e', data: 1, id: '1764363600001-0' }] })
  const none = client.history('plain')
  socket.receive({ type: 'error', code: 'no_history', message: 'no history', ref: socket.frames('history')[2]?.['ref'] })
  await assert.rejects(none, { code: 'no_history' })
})
