import { test } from 'node:test'
import type { Socket } from 'node:net'
import assert from 'node:assert/strict'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import comet from '../lib/index.ts'
import { payloadOf, textFrame } from '../lib/protocol/wire.ts'
import { HASH, startApp } from './helpers/app.ts'
import { eventually, TestClient } from './helpers/client.ts'

// Payload lengths at every boundary of the frame header: 7-bit, 16-bit and 64-bit lengths.
const SIZES = [0, 125, 126, 65_535, 65_536, 200_000]

test('textFrame: header and payload as RFC 6455 lays them out, payloadOf returns the payload', () => {
  for (const size of SIZES) {
    const payload = Buffer.alloc(size, 'x')
    const frame = textFrame(payload)
    assert.equal(frame[0], 0x81, 'FIN, text, no RSV bits')
    const head = size < 126 ? 2 : size < 65_536 ? 4 : 10
    assert.equal(frame.length, head + size)
    const length = head === 2 ? frame[1] : head === 4 ? frame.readUInt16BE(2) : Number(frame.readBigUInt64BE(2))
    assert.equal(length, size, `length field for ${size}`)
    assert.equal(frame[1]! & 0x80, 0, 'not masked')
    assert.ok(payloadOf(frame).equals(payload))
  }
})

/** Sends user and channel messages around every header boundary; a real ws client must read each intact. */
async function roundTrip (url: string, app: Awaited<ReturnType<typeof startApp>>['app'], deflate: boolean): Promise<void> {
  await app.comet.registerAuth('w', HASH)
  const client = await TestClient.open(url, { perMessageDeflate: deflate, maxPayload: 1 << 20 })
  assert.equal(client.ws.extensions.includes('permessage-deflate'), deflate)
  await client.auth('w', HASH)
  client.send({ type: 'subscribe', channel: 'news' })
  await client.type('subscribed')
  // A frame's payload is ~70 bytes longer than its data (type, channel, event, id).
  const sizes = [1, 60, 100, 65_460, 65_500, 150_000]
  for (const size of sizes) {
    await app.comet.sendToUser('w', 'e', 'u'.repeat(size))
    await app.comet.publish('news', 'e', 'c'.repeat(size))
  }
  await eventually(() => client.frames.filter((f) => f.type === 'message').length === sizes.length * 2, 'every message')
  assert.deepEqual(client.messages().map((f) => f.data), sizes.map((n) => 'u'.repeat(n)))
  assert.deepEqual(client.messages('news').map((f) => f.data), sizes.map((n) => 'c'.repeat(n)))
  // Compressed, these repeated letters shrink a hundredfold: proof the frames went through ws' deflate.
  const read = (client.ws as unknown as { _socket: Socket })._socket.bytesRead
  const sent = 2 * sizes.reduce((a, b) => a + b)
  assert.ok(deflate ? read < sent / 20 : read > sent, `${read} bytes read for ${sent} bytes of data`)
  await client.close()
}

test('routed messages of every frame size reach a real client intact, user and channel', async (t) => {
  const { app, url } = await startApp({ maxPayload: 1 << 20 })
  t.after(() => app.close())
  await roundTrip(url, app, false)
})

test('an app whose WebSocket server compresses: messages go through ws, compressed, in order', async (t) => {
  const app = Fastify()
  await app.register(websocket, { options: { perMessageDeflate: true } })
  await app.register(comet, { maxPayload: 1 << 20 })
  t.after(() => app.close())
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  await roundTrip(`ws://127.0.0.1:${port}/comet`, app, true)
})
