import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import { CometClient } from '../../lib/client/index.ts'
import type { CometClientOptions, LockManagerLike } from '../../lib/client/index.ts'
import { fakeServer, privateMessage } from './fake-socket.ts'

const HASH = 'a-long-enough-secret-hash'

/** Exclusive Web Locks, first come first served, like navigator.locks within one origin. */
class FakeLocks implements LockManagerLike {
  readonly #held = new Set<string>()
  readonly #waiting = new Map<string, Array<() => void>>()

  request (name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown> {
    return new Promise((resolve, reject) => {
      const grant = (): void => {
        this.#held.add(name)
        callback().finally(() => {
          this.#held.delete(name)
          this.#waiting.get(name)?.shift()?.()
        }).then(resolve, reject)
      }
      if (!this.#held.has(name)) {
        grant()
        return
      }
      const queue = this.#waiting.get(name) ?? []
      this.#waiting.set(name, queue)
      queue.push(grant)
      options.signal?.addEventListener('abort', () => {
        const at = queue.indexOf(grant)
        if (at !== -1) queue.splice(at, 1)
        reject(new Error('AbortError'))
      })
    })
  }
}

async function until (what: string, check: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await sleep(2)
  }
}

function tabs (t: TestContext) {
  const server = fakeServer()
  const locks = new FakeLocks()
  const open = (options: Partial<CometClientOptions> = {}): CometClient => {
    const client = new CometClient({
      url: 'ws://example.test/comet',
      userId: '42',
      hash: HASH,
      WebSocket: server.WebSocket,
      pingInterval: 0,
      window: null,
      shareConnection: true,
      sharing: { BroadcastChannel, locks },
      ...options
    })
    t.after(() => client.close())
    return client
  }
  return { server, open }
}

test('tabs of one user share one socket: messages reach every tab, subscriptions and requests go through the leader', async (t) => {
  const { server, open } = tabs(t)
  const a = open()
  const b = open()
  await until('the leader connects', () => server.sockets.length === 1)
  const socket = server.last()
  socket.accept()
  await until('the follower hears the leader is open', () => b.status === 'open')
  assert.equal(a.status, 'open')

  const got: Record<string, string[]> = { a: [], b: [] }
  a.subscribe('msg', (m) => got['a']?.push(m.id))
  b.subscribe('msg.event1', (m) => got['b']?.push(m.id))
  b.subscribe('news', (m) => got['b']?.push(m.id))
  await until('the follower\'s channel is subscribed on the leader\'s socket', () => socket.frames('subscribe').length === 1)
  assert.equal(socket.frames('subscribe')[0]?.['channel'], 'news')

  socket.receive(privateMessage(1, 'event1'))
  socket.receive(privateMessage(2, 'event2'))
  socket.receive({ type: 'message', channel: 'news', event: 'x', data: null, id: 'n1' })
  await until('the follower gets its messages', () => got['b']?.length === 2)
  assert.deepEqual(got, { a: ['1', '2'], b: ['1', 'n1'] })

  const members = b.members('track_room')
  await until('the follower\'s request is sent by the leader', () => socket.frames('members').length === 1)
  socket.receive({ type: 'members', channel: 'track_room', members: ['42'], ref: socket.frames('members')[0]?.['ref'] })
  assert.deepEqual(await members, ['42'])
  assert.equal(server.sockets.length, 1, 'still one socket')
})

test('another user in the same browser gets a socket of their own', async (t) => {
  const { server, open } = tabs(t)
  open()
  open({ userId: '43' })
  await until('two sockets', () => server.sockets.length === 2)
})

test('when the leader tab closes, the next tab connects with since = the last id it saw and keeps its subscriptions', async (t) => {
  const { server, open } = tabs(t)
  const a = open()
  const b = open()
  const seen: string[] = []
  b.subscribe('msg', (m) => seen.push(m.id))
  b.subscribe('news', () => {})
  await until('the leader connects', () => server.sockets.length === 1)
  server.last().accept()
  await until('the follower is open', () => b.status === 'open')
  server.last().receive(privateMessage('1764363600000001'))
  await until('the follower saw the message', () => seen.length === 1)

  a.close()
  await until('the follower takes over', () => server.sockets.length === 2)
  assert.equal(b.status, 'connecting')
  const auth = server.last().accept()
  assert.equal(auth['since'], '1764363600000001')
  await until('resubscribed', () => server.last().frames('subscribe').length === 1)
  assert.equal(server.last().frames('subscribe')[0]?.['channel'], 'news')
  assert.equal(b.status, 'open')
  server.last().receive(privateMessage('1764363600000001'))
  server.last().receive(privateMessage('1764363600000002'))
  assert.deepEqual(seen, ['1764363600000001', '1764363600000002'], 'the replayed one is dropped')
})

test('a follower that closes leaves the leader\'s socket alone and its channels are dropped', async (t) => {
  const { server, open } = tabs(t)
  const a = open()
  const b = open()
  b.subscribe('news', () => {})
  await until('the leader connects', () => server.sockets.length === 1)
  const socket = server.last()
  socket.accept()
  await until('subscribed', () => socket.frames('subscribe').length === 1)
  b.close()
  await until('unsubscribed', () => socket.frames('unsubscribe').length === 1)
  assert.equal(a.status, 'open')
  assert.equal(socket.closedWith, null)
})

test('when the shared socket is refused (4401) every tab stops, tabs opened later with the same hash too, and new credentials get a socket', async (t) => {
  const { server, open } = tabs(t)
  const a = open()
  const b = open()
  await until('the leader connects', () => server.sockets.length === 1)
  server.last().accept()
  await until('the follower is open', () => b.status === 'open')
  const pending = b.members('track_room')
  const refused = assert.rejects(pending, { code: 'closed' })
  server.last().drop(4401)
  await until('both tabs know', () => a.status === 'auth-failed' && b.status === 'auth-failed')
  await refused

  const late = open()
  await until('a tab opened later learns it from the leader', () => late.status === 'auth-failed')
  await new Promise((resolve) => setTimeout(resolve, 50))
  assert.equal(server.sockets.length, 1, 'nobody tried the same credentials again')

  const renewed = open({ hash: 'a-newly-registered-hash' })
  await until('new credentials get their own socket', () => server.sockets.length === 2)
  assert.equal(server.last().accept()['hash'], 'a-newly-registered-hash')
  assert.equal(renewed.status, 'open')
})
