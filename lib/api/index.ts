import { authRecord, createSecret, digest, weakness } from '../auth/hash.ts'
import * as queries from '../channels/queries.ts'
import type { ChannelScope } from '../channels/queries.ts'
import { historyOf } from '../channels/policy.ts'
import type { ChannelInfo, HistoryResult } from '../channels/types.ts'
import { errors } from '../errors.ts'
import type { Settings } from '../options.ts'
import { ID_AND_TAIL, messageHead } from '../protocol/frames.ts'
import type { Once, Store } from '../store/types.ts'
import type { CometApi, CreateAuthOptions, Presence, RegisterAuthOptions, SendOptions, UserId } from '../types.ts'

/** The server API that sends and reads: all of `app.comet` but what needs an instance (server events, health). */
export type ServerApi = Omit<CometApi, 'on' | 'off' | 'health'>
import * as validate from '../validate.ts'
import { PRIVATE_CHANNEL } from '../protocol/names.ts'
import type { LocalIds } from '../ids.ts'

export interface ApiContext {
  settings: Settings
  store: Store
  /** Ids of messages published without history. */
  ids: LocalIds
  /**
   * Runs each store call: refuses once closed (FST_ERR_COMET_CLOSED) and turns store failures into
   * FST_ERR_COMET_UNAVAILABLE.
   */
  call: <T>(work: () => Promise<T>) => Promise<T>
}

const IDEMPOTENCY_KEY = /^[A-Za-z0-9_.:-]{1,128}$/

/**
 * The server API, one implementation: `app.comet` on every instance, the CometEmitter in other processes,
 * and the HTTP API on top of either (lib/api/http.ts).
 */
export function createApi ({ settings, store, ids, call }: ApiContext): ServerApi {
  const scope: ChannelScope = { store, settings: settings.channels, heartbeatInterval: settings.heartbeatInterval }

  function frameHead (channel: string, event: unknown, data: unknown): string {
    const head = messageHead(channel, validate.eventName(event), validate.json(data))
    const size = Buffer.byteLength(head) + ID_AND_TAIL
    // A message kept in history must also fit in a history reply.
    const max = settings.maxPayload - queries.reserve(settings.channels, channel)
    if (size > max) throw new errors.PAYLOAD_TOO_LARGE(size, max)
    return head
  }

  async function register (userId: UserId, hash: string, opts: RegisterAuthOptions): Promise<void> {
    const id = validate.userId(userId)
    if (typeof opts !== 'object' || opts === null) throw new errors.TTL('options must be an object')
    const ttl = validate.ttl(opts.ttl)
    await call(() => store.setAuth(id, authRecord(digest(hash), ttl === undefined ? undefined : Date.now() + ttl), ttl))
  }

  function once (options: SendOptions | undefined): Once | undefined {
    if (options === undefined) return undefined
    if (typeof options !== 'object' || options === null) throw new errors.IDEMPOTENCY_KEY(`(options must be an object, got ${validate.describe(options)})`)
    const key = options.idempotencyKey
    if (key === undefined) return undefined
    if (typeof key !== 'string' || !IDEMPOTENCY_KEY.test(key)) throw new errors.IDEMPOTENCY_KEY(validate.describe(key))
    return { key, ttl: settings.idempotencyTtl }
  }

  const api: ServerApi = {
    async registerAuth (userId: UserId, hash: string, opts: RegisterAuthOptions = {}): Promise<void> {
      if (typeof hash !== 'string') throw new errors.HASH('it must be a string')
      if (hash.length < settings.minHashLength) throw new errors.HASH(`it must be at least ${settings.minHashLength} characters (minHashLength)`)
      if (hash.length > 1024) throw new errors.HASH('it must be at most 1024 characters')
      const weak = weakness(hash)
      if (weak !== null) throw new errors.HASH(weak)
      await register(userId, hash, opts)
    },
    async createAuth (userId: UserId, opts: CreateAuthOptions = {}): Promise<string> {
      const secret = createSecret()
      await register(userId, secret, opts)
      return secret
    },
    async revokeAuth (userId: UserId): Promise<void> {
      const id = validate.userId(userId)
      await call(() => store.revokeAuth(id))
    },
    async sendToUser (userId: UserId, event: string, data: unknown, options?: SendOptions) {
      const id = validate.userId(userId)
      const head = frameHead(PRIVATE_CHANNEL, event, data)
      const repeat = once(options)
      return await call(() => store.sendToUser(id, head, repeat))
    },
    async sendToUsers (userIds: readonly UserId[], event: string, data: unknown) {
      const ids = validate.userIds(userIds)
      const head = frameHead(PRIVATE_CHANNEL, event, data)
      if (ids.length === 0) return []
      const sent = await call(() => store.sendToUsers(ids, head))
      return sent.map((result, i) => ({ userId: ids[i]!, ...result }))
    },
    async publish (channel: string, event: string, data: unknown, options?: SendOptions) {
      const name = validate.channelName(channel)
      const head = frameHead(name, event, data)
      const repeat = once(options)
      const id = ids.next()
      return { id: await call(() => queries.publish(scope, name, head, id, undefined, repeat)) }
    },
    async isOnline (userId: UserId): Promise<boolean> {
      return (await api.presence(userId)).online
    },
    async presence (userId: UserId): Promise<Presence> {
      const id = validate.userId(userId)
      const { devices, seen } = await call(() => store.status(id))
      return { online: devices > 0, devices, lastSeen: devices > 0 ? new Date() : seen === null ? null : new Date(seen) }
    },
    async members (channel: string): Promise<string[]> {
      const name = validate.channelName(channel)
      return await call(() => queries.members(scope, name))
    },
    async channelStats (channel: string) {
      const name = validate.channelName(channel)
      return await call(() => queries.stats(scope, name))
    },
    async channels (): Promise<ChannelInfo[]> {
      return await call(async () => {
        const names = await store.channels.active()
        const all: ChannelInfo[] = await Promise.all(names.map(async (channel) => ({ channel, ...await queries.stats(scope, channel) })))
        return all.filter((c) => c.subscribers > 0).sort((a, b) => a.channel < b.channel ? -1 : 1)
      })
    },
    async history (channel: string, since?: string): Promise<HistoryResult> {
      const name = validate.channelName(channel)
      if (since !== undefined && typeof since !== 'string') throw new errors.HISTORY(`since must be a message id, got ${validate.describe(since)}`)
      if (historyOf(settings.channels, name) === undefined) throw new errors.HISTORY(`${name} matches no history pattern`)
      const read = await call(() => store.channels.history(name, since ?? null))
      return { recovered: read.recovered, messages: read.frames.map((f) => JSON.parse(f) as HistoryResult['messages'][number]) }
    }
  }
  return api
}
