// lib/internals.ts reaches into private fields of ws, Node's http and ioredis. These tests fail when a
// library stops keeping a field where we read it, so an upgrade that moves it shows here. The Cluster's
// subscriber group is checked in test/redis-cluster.test.ts (it needs a cluster).
import { test } from 'node:test'
import assert from 'node:assert/strict'
import { once } from 'node:events'
import { ServerResponse } from 'node:http'
import { Socket } from 'node:net'
import Fastify from 'fastify'
import websocket from '@fastify/websocket'
import { WebSocket, WebSocketServer } from 'ws'
import { rawSocket, releaseUpgrade } from '../lib/internals.ts'

test('ws keeps the TCP socket under an open WebSocket as _socket', async (t) => {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' })
  t.after(() => wss.close())
  await once(wss, 'listening')
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as { port: number }).port}`)
  t.after(() => client.terminate())
  const [server] = await once(wss, 'connection') as [WebSocket]
  assert.ok(rawSocket(server) instanceof Socket)
  // A frame written straight to the socket reaches the peer as a message: what a prebuilt frame relies on.
  rawSocket(server).write(Buffer.from([0x81, 2, 0x68, 0x69]))
  const [data] = await once(client, 'message') as [Buffer]
  assert.equal(data.toString(), 'hi')
})

test('an upgraded socket still points at its HTTP response (_socket._httpMessage) until releaseUpgrade', async (t) => {
  const app = Fastify()
  t.after(() => app.close())
  await app.register(websocket)
  let before: unknown
  let after: unknown
  app.get('/ws', { websocket: true }, (socket) => {
    const raw = (socket as unknown as { _socket: { _httpMessage: unknown } })._socket
    before = raw._httpMessage
    releaseUpgrade(socket)
    after = raw._httpMessage
    assert.equal(socket.listenerCount('error'), 0, "@fastify/websocket's error listener is gone")
    socket.close()
  })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const client = new WebSocket(`ws://127.0.0.1:${(app.server.address() as { port: number }).port}/ws`)
  await once(client, 'close')
  assert.ok(before instanceof ServerResponse, 'the response is there to detach')
  assert.equal(after, null, 'detached: the response can be collected')
})
