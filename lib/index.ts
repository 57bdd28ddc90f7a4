import type { FastifyInstance } from 'fastify'
import fp from 'fastify-plugin'
import { createApi } from './api/index.ts'
import { apiRoutes } from './api/http.ts'
import { AuthLimits } from './auth/limits.ts'
import { vouchedFor } from './auth/hook.ts'
import { Channels } from './channels/index.ts'
import { AddressCounts } from './connections/addresses.ts'
import { Connection } from './connections/connection.ts'
import type { ConnectionContext } from './connections/connection.ts'
import { SOCKET_SLICES, spread, startHeartbeat } from './connections/heartbeat.ts'
import { Slices } from './routing/slices.ts'
import { errors } from './errors.ts'
import { Events } from './events/index.ts'
import { normalize, storeSettings } from './options.ts'
import { Operations } from './operations/index.ts'
import { storeKind } from './operations/health.ts'
import { CLOSE } from './protocol/close-codes.ts'
import { Hub } from './routing/hub.ts'
import { MemoryStore } from './store/memory/index.ts'
import { RedisStore } from './store/redis/index.ts'
import type { Store } from './store/types.ts'
import type { CometApi, CometOptions } from './types.ts'
import { useWebsocket } from './websocket.ts'
import { upgradeChecks } from './upgrade.ts'
import { serveClient } from './client-bundle.ts'
import { releaseUpgrade } from './internals.ts'
import { statusFrame } from './channels/frames.ts'
import { USER_STATUS } from './protocol/names.ts'
import { LocalIds } from './ids.ts'

export type * from './types.ts'
export { errors } from './errors.ts'
export { CLOSE } from './protocol/close-codes.ts'
export { verifyWebhook } from './events/webhooks.ts'
export { PROTOCOL } from './protocol/version.ts'

declare module 'fastify' {
  interface FastifyInstance {
    comet: CometApi
  }
}

/** How long shutdown waits for clients to answer the close handshake before cutting them. */
const CLOSE_GRACE = 2000

async function comet (app: FastifyInstance, options: CometOptions): Promise<void> {
  const settings = normalize(options)
  const ops = await Operations.start(settings.operations)
  const log = app.log.child({}, { redact: ['hash', 'token'], ...(settings.register.logLevel === undefined ? {} : { level: settings.register.logLevel }) })
  const store: Store = ops.store(settings.redis === undefined
    ? new MemoryStore(storeSettings(settings))
    : new RedisStore(settings.redis, storeSettings(settings), log, settings.shardedPubSub))
  const hub = new Hub<Connection>(store, log)
  const conns = new Slices<Connection>(SOCKET_SLICES)
  const ids = new LocalIds()
  const instance = ids.instance
  const channels = new Channels({ settings: settings.channels, store, hub, log, ids, heartbeatInterval: settings.heartbeatInterval, maxPayload: settings.maxPayload })
  let devices = 0
  let state: 'open' | 'closing' | 'closed' = 'open'

  try {
    await store.start({
      user: (userId, message) => hub.deliverUser(userId, message),
      control: (userId, control) => hub.control(userId, control),
      channel: (channel, frame, sender) => hub.deliverChannel(channel, frame, channels.sender(sender)),
      status: (userId, online) => hub.deliverChannel(USER_STATUS + userId, statusFrame(userId, online)),
      resync: (ready) => hub.resync(ready)
    })
  } catch (err) {
    await store.close()
    throw new errors.UNAVAILABLE((err as Error).message, { cause: err })
  }

  const events = new Events({
    store,
    log,
    webhooks: settings.webhooks,
    heartbeatInterval: settings.heartbeatInterval,
    prefix: settings.keyPrefix,
    channelSet: (channel) => channels.presence.subs(channel),
    metrics: ops.metrics
  })

  const limits = settings.authRateLimit.max > 0 ? new AuthLimits(store, settings.authRateLimit.max, settings.authRateLimit.window) : null
  const anonymous = new AddressCounts()
  const ctx: ConnectionContext = {
    settings,
    store,
    hub,
    log,
    limits,
    jwt: settings.jwt,
    channels,
    anonymous,
    nextDevice: () => `${Date.now()}.${instance}.${(++devices).toString(36)}`,
    closed: (conn) => conns.delete(conn.slice, conn),
    prebuilt: false,
    metrics: ops.metrics
  }
  const stopHeartbeat = startHeartbeat(settings.heartbeatInterval, () => conns.size, (socketSlice) => {
    spread(conns.of(socketSlice), (conn) => conn.heartbeat())
  }, (slice) => {
    hub.track(store.refresh(hub.devices(slice)), 'presence refresh')
    hub.track(channels.beat(slice), 'channel presence heartbeat')
    if (slice === 0) {
      hub.track(store.maintain(), 'routing check')
      limits?.sweep()
    }
  })

  /** Phase one of shutdown: sockets close with 1001 and this instance's devices leave the store. */
  async function shutdown (): Promise<void> {
    if (state !== 'open') return
    state = 'closing'
    stopHeartbeat()
    channels.stop()
    for (const conn of conns) conn.close(CLOSE.GOING_AWAY, 'server shutting down')
    const deadline = Date.now() + CLOSE_GRACE
    while (conns.size > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
    for (const conn of conns) conn.terminate()
    await Promise.allSettled([...hub.pending])
  }

  app.addHook('onClose', async () => {
    await shutdown()
    state = 'closed'
    await events.close()
    await store.close()
  })

  /** Runs a store call for the public API: unusable after close, and store failures become UNAVAILABLE. */
  async function call<T> (work: () => Promise<T>): Promise<T> {
    if (state === 'closed') throw new errors.CLOSED()
    try {
      return await work()
    } catch (err) {
      throw new errors.UNAVAILABLE((err as Error).message, { cause: err })
    }
  }
  const api: CometApi = ops.api({
    ...createApi({ settings, store, ids, call }),
    health: async () => await ops.health(),
    on: (type, listener) => events.on(type, listener),
    off: (type, listener) => events.off(type, listener)
  })

  // Every route of the plugin is added in this one encapsulated scope, never on `app`: fastify-plugin keeps
  // Fastify from applying its register options (`prefix`, `logLevel`, `logSerializers`) to an fp plugin's
  // routes, so they are given to this scope instead. New routes (HTTP API, metrics, admin, …) go here too.
  await app.register(async function cometRoutes (routes) {
    const wss = await useWebsocket(routes, app, settings.maxPayload, shutdown)
    // An app's own WebSocket server may compress (permessage-deflate): its sockets get messages through ws.
    ctx.prebuilt = wss.options.perMessageDeflate === false

    routes.get(settings.path, {
      websocket: true,
      onRequest: upgradeChecks({ settings, log, limits, anonymous, metrics: ops.metrics })
    }, (socket, request) => {
      if (state !== 'open') return socket.close(CLOSE.GOING_AWAY, 'server shutting down')
      releaseUpgrade(socket)
      const conn = new Connection(socket, ctx, request.ip, vouchedFor(request))
      conns.add(conn.slice, conn)
    })

    if (settings.serveClient) serveClient(routes, `${settings.path === '/' ? '' : settings.path}/client.js`)
    if (settings.api !== null) apiRoutes(routes, settings.path, settings.api, api)
    ops.serve(app, routes, settings.path === '/' ? '' : settings.path, { instance, store, storeKind: storeKind(settings.redis), hub, conns, heartbeatInterval: settings.heartbeatInterval })
  }, settings.register)

  app.decorate('comet', api)
}

const plugin = fp(comet, { fastify: '5.x', name: 'fastify-comet' })
export default plugin
export { plugin as comet }
