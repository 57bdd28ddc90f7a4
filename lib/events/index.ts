import type { FastifyBaseLogger } from 'fastify'
import { errors } from '../errors.ts'
import type { Metrics } from '../operations/metrics.ts'
import type { PresenceSet } from '../store/channels.ts'
import { MemoryStore } from '../store/memory/index.ts'
import { RedisStore } from '../store/redis/index.ts'
import type { Store } from '../store/types.ts'
import * as validate from '../validate.ts'
import { Listeners, Ordered } from './listeners.ts'
import { RedisEvents } from './redis.ts'
import { EVENT_TYPES, toEvent } from './types.ts'
import type { ServerEventListener, ServerEventType, StoreEvent } from './types.ts'
import { Webhook } from './webhooks.ts'
import type { WebhookSettings } from './webhooks.ts'

export interface EventsContext {
  store: Store
  log: FastifyBaseLogger
  webhooks: WebhookSettings[]
  heartbeatInterval: number
  prefix: string
  channelSet: (channel: string) => PresenceSet
  metrics: Metrics | null
}

/**
 * Server events (docs/events.md): `app.comet.on/off` and webhooks. The stores decide each event with its
 * transition; this hands them to the listeners of one instance and to the webhooks, on memory in
 * process, on Redis through streams (lib/events/redis.ts).
 */
export class Events {
  #abort = new AbortController()
  #listeners: Listeners
  #webhooks: Webhook[]
  #redis: RedisEvents | null = null

  constructor (ctx: EventsContext) {
    const stop = this.#abort.signal
    this.#listeners = new Listeners(ctx.log, stop, ctx.metrics)
    this.#webhooks = ctx.webhooks.map((settings) => new Webhook(settings, ctx.log, stop, ctx.metrics))
    const { store } = ctx
    if (store instanceof MemoryStore) {
      store.events = this.#memorySink()
    } else if (store instanceof RedisStore) {
      const { client, sharded } = store.link
      this.#redis = new RedisEvents({
        client,
        sharded,
        prefix: ctx.prefix,
        log: ctx.log,
        heartbeatInterval: ctx.heartbeatInterval,
        listeners: this.#listeners,
        webhooks: this.#webhooks,
        channelSet: ctx.channelSet,
        channels: store.channels,
        stop
      })
      if (this.#webhooks.length > 0) this.#redis.wake()
    }
  }

  /** In one process: events in order per user or channel, listeners and webhooks as on Redis. */
  #memorySink (): (raw: StoreEvent) => void {
    const ordered = new Ordered()
    let n = 0
    return (raw) => {
      if (this.#abort.signal.aborted || (this.#listeners.size === 0 && this.#webhooks.length === 0)) return
      const event = toEvent(raw, `${raw.at}-${++n}`)
      if (this.#listeners.has(event.type)) ordered.push(raw.key, async () => await this.#listeners.run(event)).catch(() => {})
      for (const webhook of this.#webhooks) if (webhook.wants(event.type)) webhook.push(event)
    }
  }

  on<T extends ServerEventType> (type: T, listener: ServerEventListener<T>): void {
    this.#check(type, listener)
    this.#listeners.add(type, listener as unknown as ServerEventListener)
    this.#redis?.wake()
  }

  off<T extends ServerEventType> (type: T, listener: ServerEventListener<T>): void {
    this.#check(type, listener)
    this.#listeners.remove(type, listener as unknown as ServerEventListener)
  }

  #check (type: unknown, listener: unknown): void {
    if (!(EVENT_TYPES as readonly unknown[]).includes(type)) throw new errors.EVENTS(`unknown event type ${validate.describe(type)}; use one of ${EVENT_TYPES.join(', ')}`)
    if (typeof listener !== 'function') throw new errors.EVENTS('the listener must be a function')
  }

  /** Stops reading; unacknowledged events go to another instance. Call before the store closes. */
  async close (): Promise<void> {
    this.#abort.abort()
    await this.#redis?.close()
  }
}
