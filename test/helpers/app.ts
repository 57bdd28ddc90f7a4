import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import type { Server } from 'node:http'
import type { Duplex } from 'node:stream'
import type { WebSocket, WebSocketServer } from 'ws'
import comet from '../../lib/index.ts'
import type { CometOptions } from '../../lib/index.ts'

export interface TestApp {
  app: FastifyInstance
  url: string
  /** The WebSocket server behind the plugin's route (the plugin keeps its own off `app.websocketServer`). */
  wss: WebSocketServer
  /** The server side of every open socket (the plugin's server does not track its clients). */
  sockets: Set<WebSocket>
}

/** A real Fastify instance with the plugin, listening on a free loopback port. */
export async function startApp (options: CometOptions = {}, listen = true): Promise<TestApp> {
  const app = Fastify({ logger: false })
  const wss = cometServer(app)
  await app.register(comet, options)
  const server = wss()
  const sockets = new Set<WebSocket>()
  server.on('connection', (ws: WebSocket) => {
    sockets.add(ws)
    ws.once('close', () => sockets.delete(ws))
  })
  if (!listen) {
    await app.ready()
    return { app, url: '', wss: server, sockets }
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/comet`, wss: server, sockets }
}

/**
 * Finds the WebSocket server the plugin registers in its own route scope, through Fastify's onRegister
 * hook: call it before registering the plugin, read the result once it is registered.
 */
export function cometServer (app: FastifyInstance): () => WebSocketServer {
  const scopes: FastifyInstance[] = []
  app.addHook('onRegister', (scope) => { scopes.push(scope) })
  return () => {
    const scope = scopes.find((s) => Object.hasOwn(s, 'websocketServer')) ?? app
    return scope.websocketServer
  }
}

export const HASH = 'a-long-enough-secret-hash'

/** The sockets of the server's WebSocket upgrades that are still open, for an app the test did not build. */
export function openUpgrades (server: Server): Set<Duplex> {
  const open = new Set<Duplex>()
  server.on('upgrade', (_request, socket: Duplex) => {
    open.add(socket)
    socket.once('close', () => open.delete(socket))
  })
  return open
}
