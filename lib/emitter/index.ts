import { createApi } from '../api/index.ts'
import type { ServerApi } from '../api/index.ts'
import { errors } from '../errors.ts'
import { storeSettings } from '../options.ts'
import { RedisStore } from '../store/redis/index.ts'
import type { ChannelInfo, ChannelStats, HistoryResult } from '../channels/types.ts'
import type { CreateAuthOptions, EventData, Presence, PublishResult, RegisterAuthOptions, SendOptions, SendResult, UserId, UserSendResult } from '../types.ts'
import { normalizeEmitter } from './options.ts'
import type { EmitterOptions } from './types.ts'
import { LocalIds } from '../ids.ts'

export type { EmitterLogger, EmitterOptions } from './types.ts'
export type { ServerApi } from '../api/index.ts'
export type { ChannelInfo, ChannelStats, CometEvents, CreateAuthOptions, EventData, HistoryResult, Presence, PublishResult, RegisterAuthOptions, SendOptions, SendResult, UserId, UserSendResult } from '../types.ts'
export { errors } from '../errors.ts'

/**
 * Sends from any Node process (a job worker, a cron task) to the users and channels of an app that runs
 * the plugin on the same Redis: the same methods, arguments, results and errors as `app.comet`, through
 * the same scripts. It opens one Redis connection (none for routing: it receives nothing) and loads
 * neither Fastify nor ws. `close()` releases it, so the process can exit.
 */
export class CometEmitter implements ServerApi {
  #store: RedisStore
  #api: ServerApi
  #closed = false
  #connecting: Promise<void> | null = null

  constructor (options: EmitterOptions) {
    const settings = normalizeEmitter(options)
    const logger = options.logger
    const log = { warn: (obj: object, msg: string) => logger?.warn(obj, msg) }
    this.#store = new RedisStore(settings.redis as NonNullable<typeof settings.redis>, storeSettings(settings), log, settings.shardedPubSub)
    const call = async <T>(work: () => Promise<T>): Promise<T> => {
      if (this.#closed) throw new errors.CLOSED()
      try {
        await this.#connect()
        return await work()
      } catch (err) {
        throw new errors.UNAVAILABLE((err as Error).message, { cause: err })
      }
    }
    this.#api = createApi({ settings, store: this.#store, ids: new LocalIds(), call })
  }

  /** The first call waits for the connection; after a failed attempt the next call tries again. */
  async #connect (): Promise<void> {
    this.#connecting ??= this.#store.connect().catch((err: unknown) => {
      this.#connecting = null
      throw err
    })
    await this.#connecting
  }

  registerAuth (userId: UserId, hash: string, options?: RegisterAuthOptions): Promise<void> { return this.#api.registerAuth(userId, hash, options) }
  createAuth (userId: UserId, options?: CreateAuthOptions): Promise<string> { return this.#api.createAuth(userId, options) }
  revokeAuth (userId: UserId): Promise<void> { return this.#api.revokeAuth(userId) }
  sendToUser<E extends string> (userId: UserId, event: E, data: EventData<E>, options?: SendOptions): Promise<SendResult> { return this.#api.sendToUser(userId, event, data, options) }
  sendToUsers<E extends string> (userIds: readonly UserId[], event: E, data: EventData<E>): Promise<UserSendResult[]> { return this.#api.sendToUsers(userIds, event, data) }
  publish<E extends string> (channel: string, event: E, data: EventData<E>, options?: SendOptions): Promise<PublishResult> { return this.#api.publish(channel, event, data, options) }
  isOnline (userId: UserId): Promise<boolean> { return this.#api.isOnline(userId) }
  presence (userId: UserId): Promise<Presence> { return this.#api.presence(userId) }
  members (channel: string): Promise<string[]> { return this.#api.members(channel) }
  channelStats (channel: string): Promise<ChannelStats> { return this.#api.channelStats(channel) }
  channels (): Promise<ChannelInfo[]> { return this.#api.channels() }
  history (channel: string, since?: string): Promise<HistoryResult> { return this.#api.history(channel, since) }

  /**
   * Closes the Redis connection the emitter opened (one you passed in stays open); later calls reject
   * with FST_ERR_COMET_CLOSED. Idempotent.
   */
  async close (): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await this.#store.close()
  }
}
