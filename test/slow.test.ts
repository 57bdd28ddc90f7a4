import { test } from 'node:test'
import assert from 'node:assert/strict'
import type { Socket } from 'node:net'
import { appOn, BACKENDS } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'

for (const backend of BACKENDS) {
  test(`${backend}: a client that stops reading is cut at maxBufferedBytes with 4413, and resumes without loss`, async (t) => {
    const maxBufferedBytes = 256 * 1024
    const { app, url, sockets } = await appOn(t, backend, { maxBufferedBytes, resume: { size: 1000 } })
    await app.comet.registerAuth('slow', HASH)
    const client = await TestClient.open(url)
    await client.auth('slow', HASH)
    const socket = (client.ws as unknown as { _socket: Socket })._socket
    socket.pause()

    const payload = 'x'.repeat(32 * 1024)
    const sent: string[] = []
    let maxBuffered = 0
    const cut = (): boolean => [...sockets].every((ws) => ws.readyState !== ws.OPEN)
    for (let i = 0; i < 600; i++) {
      sent.push((await app.comet.sendToUser('slow', 'big', { i, payload })).id)
      for (const ws of sockets) maxBuffered = Math.max(maxBuffered, ws.bufferedAmount)
      // Reading again at once: a client that reads nothing for a second after the cut is destroyed (below).
      if (socket.isPaused() && cut()) socket.resume()
    }
    await eventually(cut, 'the server cut the slow client')
    assert.ok(maxBuffered <= maxBufferedBytes, `buffered ${maxBuffered} bytes, cap ${maxBufferedBytes}`)
    socket.resume()
    assert.equal(await client.closed, 4413)

    const got = client.messages().map((m) => m.id)
    assert.ok(got.length < sent.length, 'the client really fell behind')
    const back = await TestClient.open(url)
    t.after(() => back.close())
    const ready = await back.auth('slow', HASH, { since: got.at(-1) })
    assert.equal(ready.recovered, true)
    await eventually(() => got.length + back.messages().length === sent.length, 'the rest')
    assert.deepEqual([...got, ...back.messages().map((m) => m.id)], sent, 'every message once, in order')
  })
}

test('a client cut for being slow that never reads again is destroyed, not left to the close handshake', async (t) => {
  const { app, url, sockets } = await appOn(t, 'memory', { maxBufferedBytes: 64 * 1024 })
  await app.comet.registerAuth('stuck', HASH)
  const client = await TestClient.open(url)
  t.after(() => client.ws.terminate())
  await client.auth('stuck', HASH)
  const socket = (client.ws as unknown as { _socket: Socket })._socket
  socket.pause()
  const payload = 'x'.repeat(32 * 1024)
  const server = [...sockets][0]!
  for (let i = 0; server.readyState === server.OPEN; i++) {
    assert.ok(i < 2000, 'the server never cut the client')
    await app.comet.sendToUser('stuck', 'big', { i, payload })
  }
  // Without the cut's grace check it would wait for ws' 30 s close timeout.
  await eventually(() => server.readyState === server.CLOSED, 'the stuck socket is destroyed while its client still reads nothing', 10_000)
  assert.equal(socket.isPaused(), true)
})
