import type { FastifyInstance } from 'fastify'
import type { Store } from '../store/types.ts'
import type { CometApi } from '../types.ts'
import { serveAdmin } from './admin.ts'
import type { Health } from './health.ts'
import { ping } from './health.ts'
import { Recorder } from './metrics.ts'
import type { MessageKind, Metrics } from './metrics.ts'
import type { OperationSettings } from './options.ts'
import { loadPromClient, Prometheus } from './prometheus.ts'
import type { Running } from './running.ts'

/**
 * Seeing the plugin run: Prometheus metrics, the health check, the admin page. The plugin calls in at a
 * few points (lib/index.ts); with everything off, `metrics` is null and nothing else runs.
 */
export class Operations {
  readonly #settings: OperationSettings
  /** The hot path's reports: null unless metrics or the admin page are on. */
  readonly metrics: Metrics | null
  readonly #recorder: Recorder | null
  readonly #prometheus: Prometheus | null
  #running: Running | null = null

  private constructor (settings: OperationSettings, prom: Awaited<ReturnType<typeof loadPromClient>> | null) {
    this.#settings = settings
    this.#recorder = settings.metrics !== null || settings.admin !== null ? new Recorder() : null
    this.metrics = this.#recorder
    this.#prometheus = prom === null || settings.metrics === null || this.#recorder === null
      ? null
      : new Prometheus(prom, settings.metrics, this.#recorder, {
        connections: () => {
          let authenticating = 0
          let ready = 0
          for (const conn of this.#running?.conns ?? []) {
            if (conn.closed) continue
            if (conn.authenticating) authenticating++
            else ready++
          }
          return { authenticating, ready }
        },
        users: () => this.#running?.hub.users.size ?? 0,
        subscriptions: () => {
          let count = 0
          for (const route of this.#running?.hub.channels.values() ?? []) count += route.conns.size
          return count
        },
        storeUp: async () => this.#running !== null && await ping(this.#running.store) === null
      })
  }

  /** Loads prom-client when metrics are on (FST_ERR_COMET_OPTIONS when it is not installed). */
  static async start (settings: OperationSettings): Promise<Operations> {
    return new Operations(settings, settings.metrics === null ? null : await loadPromClient())
  }

  /** The store, timed when metrics are on. */
  store<S extends Store> (store: S): S {
    return this.#prometheus === null ? store : this.#prometheus.timed(store)
  }

  /** The API, with its sends counted and timed when metrics or the admin page are on. */
  api (api: CometApi): CometApi {
    const recorder = this.#recorder
    if (recorder === null) return api
    const prometheus = this.#prometheus
    const { sendToUser, sendToUsers, publish } = api
    /** Times a send, and counts each message it sent once it succeeded. */
    const timed = async <R>(kind: MessageKind, send: Promise<R>, count: (result: R) => void): Promise<R> => {
      const start = performance.now()
      try {
        const result = await send
        count(result)
        return result
      } finally {
        prometheus?.sent(kind, start)
      }
    }
    return {
      ...api,
      sendToUser: (userId, event, data, options) =>
        timed('user', sendToUser(userId, event, data, options), (result) => recorder.sent('user', result.queued)),
      sendToUsers: (userIds, event, data) =>
        timed('user', sendToUsers(userIds, event, data), (results) => { for (const result of results) recorder.sent('user', result.queued) }),
      publish: (channel, event, data, options) =>
        timed('channel', publish(channel, event, data, options), () => recorder.sent('channel', false))
    }
  }

  async health (): Promise<Health> {
    const running = this.#running
    const error = running === null ? 'not started' : await ping(running.store)
    const head = { store: running?.storeKind ?? 'memory', connections: running?.conns.size ?? 0 }
    return error === null ? { status: 'ok', ...head } : { status: 'unavailable', ...head, error }
  }

  /**
   * Mounts the routes in the plugin's route scope under `base` (the socket's path), and starts what runs
   * in the background, its hooks on the app.
   */
  serve (app: FastifyInstance, routes: FastifyInstance, base: string, running: Running): void {
    this.#running = running
    const { metrics, health, admin } = this.#settings
    const prometheus = this.#prometheus
    if (metrics?.endpoint === true && prometheus !== null) {
      routes.get(`${base}/metrics`, async (_request, reply) => {
        return await reply.type(prometheus.registry.contentType).send(await prometheus.registry.metrics())
      })
    }
    if (health) {
      routes.get(`${base}/health`, async (_request, reply) => {
        const result = await this.health()
        return await reply.code(result.status === 'ok' ? 200 : 503).send(result)
      })
    }
    if (admin !== null && this.#recorder !== null) serveAdmin(app, routes, base, admin, this.#recorder, running)
    app.addHook('onClose', async () => {
      this.#recorder?.stop()
      prometheus?.close()
    })
  }
}
