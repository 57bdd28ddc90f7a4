import type { FastifyInstance } from 'fastify'
import type { WebSocketServer } from 'ws'
import websocket from '@fastify/websocket'

/**
 * The WebSocket server behind the plugin's socket route, set up in the plugin's route scope.
 *
 * An app that registered `@fastify/websocket` before the plugin keeps it: its server (and its options and
 * pre-close) serve our route too. Otherwise the plugin registers its own inside the route scope, so the
 * `websocketServer` decorator stays free for an app that registers `@fastify/websocket` after us. Each
 * `@fastify/websocket` routes every upgrade of the HTTP server through Fastify, so when the app's own one
 * appears later, ours stops listening at `onReady`: the app's listener then routes our upgrades to our
 * route, which still upgrades them with our server.
 */
export async function useWebsocket (routes: FastifyInstance, app: FastifyInstance, maxPayload: number, shutdown: () => Promise<void>): Promise<WebSocketServer> {
  if (routes.hasDecorator('websocketServer')) {
    app.addHook('preClose', shutdown)
    return routes.websocketServer
  }
  const before = new Set(routes.server.listeners('upgrade'))
  await routes.register(websocket, {
    // The plugin keeps its own set of connections: ws' client tracking would add a close listener and a
    // set entry to every socket, memory per idle connection for nothing.
    options: { maxPayload, clientTracking: false },
    preClose: async function () {
      await shutdown()
      wss.close()
    }
  })
  const wss = routes.websocketServer
  const ours = routes.server.listeners('upgrade').filter((listener) => !before.has(listener))
  // Our listener routes every upgrade, also those no WebSocket route takes (an app route, a 404): their
  // socket left HTTP when it was upgraded, so nothing closes it after the response but this. Node's
  // parser marks such a request with `upgrade` (set, though missing from its types).
  app.addHook('onResponse', async (request) => {
    if ((request.raw as { upgrade?: boolean }).upgrade === true) request.raw.socket.destroy()
  })
  app.addHook('onReady', async () => {
    if (!app.hasDecorator('websocketServer')) return
    for (const listener of ours) routes.server.removeListener('upgrade', listener as (...args: unknown[]) => void)
  })
  return wss
}
