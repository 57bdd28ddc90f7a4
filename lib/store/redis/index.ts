import { randomBytes } from 'node:crypto'
import { Redis } from 'ioredis'
import type { RedisOptions } from 'ioredis'
import type { FastifyBaseLogger } from 'fastify'
import type { Presence, SendResult } from '../../types.ts'
import { parseRouted } from '../types.ts'
import type { AttachResult, BusHandlers, CatchUp, Routed, Store, StoreSettings } from '../types.ts'
import { Keys } from './keys.ts'
import * as scripts from './scripts.ts'
import { RedisChannels } from './channels.ts'
import { routeChannel } from '../channels.ts'

type Reply = Array<Buffer | number | null | Reply>

/** The scripts, as ioredis custom commands (EVALSHA with a fallback to EVAL, auto-pipelined). */
interface Commands {
  cometSend (...args: Array<string | number>): Promise<[string, number]>
  cometRequeue (...args: Array<string | number | Buffer>): Promise<null>
  cometAttachBuffer (...args: Array<string | number>): Promise<Reply>
  cometDetach (...args: Array<string | number>): Promise<null>
  cometPresence (...args: Array<string | number>): Promise<[number, string | null]>
  cometRefresh (...args: Array<string | number>): Promise<null>
  cometCatchUpBuffer (...args: Array<string | number>): Promise<Reply>
  cometRevoke (...args: Array<string | number>): Promise<null>
}

type CommandClient = Redis & Commands

const COMMANDS: Array<[keyof Commands, { numberOfKeys: number, lua: string }]> = [
  ['cometSend', scripts.send],
  ['cometRequeue', scripts.requeue],
  ['cometAttachBuffer', scripts.attach],
  ['cometDetach', scripts.detach],
  ['cometPresence', scripts.presence],
  ['cometRefresh', scripts.refresh],
  ['cometCatchUpBuffer', scripts.catchUp],
  ['cometRevoke', scripts.revoke]
]

/**
 * Defaults for clients we create: never hang a caller while Redis is away. Commands fail at once while
 * disconnected (no offline queue) and after 5 s on a connection that hangs.
 */
const CLIENT_DEFAULTS: RedisOptions = { enableAutoPipelining: true, enableOfflineQueue: false, maxRetriesPerRequest: 2, connectTimeout: 2000, commandTimeout: 5000 }

export class RedisStore implements Store {
  #settings: StoreSettings
  #keys: Keys
  #cmd: CommandClient
  #sub: Redis
  #ownsCmd: boolean
  #log: FastifyBaseLogger
  #metaTtl: number
  #probe: string
  /** True from sending a probe until it comes back through the subscriber. */
  #probeOut = false
  readonly channels: RedisChannels

  constructor (redis: string | RedisOptions | Redis, settings: StoreSettings, log: FastifyBaseLogger) {
    this.#settings = settings
    this.#keys = new Keys(settings.prefix)
    this.#log = log
    this.#metaTtl = Math.max(settings.lastSeenTtl, settings.queue.ttl, settings.resume.ttl)
    this.#ownsCmd = !(redis instanceof Redis)
    this.#probe = this.#keys.probeRoute(randomBytes(6).toString('hex'))
    const cmd = redis instanceof Redis
      ? redis
      : typeof redis === 'string' ? new Redis(redis, CLIENT_DEFAULTS) : new Redis({ ...CLIENT_DEFAULTS, ...redis })
    for (const [name, script] of COMMANDS) {
      const base = name.replace(/Buffer$/, '')
      // A user's own client may already carry them from another registration of the plugin.
      if (typeof (cmd as unknown as Record<string, unknown>)[base] !== 'function') cmd.defineCommand(base, script)
    }
    this.#cmd = cmd as CommandClient
    this.channels = new RedisChannels(cmd, this.#keys)
    // A subscribed connection cannot run commands: routing gets a connection of its own, always ours.
    // Its (un)subscribes queue while it reconnects, so the subscription set ioredis restores stays exact.
    this.#sub = cmd.duplicate({ enableOfflineQueue: true })
    for (const [role, client] of [['commands', cmd], ['subscriber', this.#sub]] as const) {
      if (role === 'commands' && !this.#ownsCmd) continue
      client.on('error', (err: Error) => log.warn({ err, role }, 'comet: redis connection error'))
    }
  }

  async start (handlers: BusHandlers): Promise<void> {
    const keys = this.#keys
    this.#sub.on('messageBuffer', (channelBuf: Buffer, message: Buffer) => {
      const [kind, name] = keys.parseRoute(channelBuf.toString())
      if (kind === 'i') {
        this.#probeOut = false
        return
      }
      if (kind === 'c') return routeChannel(handlers, name, message)
      if (message[0] !== 33 /* ! */) return handlers.user(name, parseRouted(message))
      const control = message.toString()
      if (control === '!revoke') handlers.control(name, { kind: 'revoke' })
      else if (control.startsWith('!evict|')) handlers.control(name, { kind: 'evict', device: control.slice(7) })
    })
    await whenReady(this.#cmd)
    await Promise.all([this.#cmd.ping(), this.#sub.subscribe(this.#probe)])
    // After a reconnect ioredis subscribes to everything again; once a PING behind those SUBSCRIBEs comes
    // back, routing is whole again and local sockets can catch up on what they missed in between.
    this.#sub.on('ready', () => {
      this.#sub.ping().then(() => handlers.resync(), (err: unknown) => this.#log.warn({ err }, 'comet: resubscribe check failed'))
    })
  }

  async setAuth (userId: string, digest: string, ttl: number | undefined): Promise<void> {
    const key = this.#keys.auth(userId)
    if (ttl === undefined) await this.#cmd.set(key, digest)
    else await this.#cmd.set(key, digest, 'PX', ttl)
  }

  async getAuth (userId: string): Promise<string | null> {
    return await this.#cmd.get(this.#keys.auth(userId))
  }

  async revokeAuth (userId: string): Promise<void> {
    const k = this.#keys
    await this.#cmd.cometRevoke(k.auth(userId), k.devices(userId), k.userRoute(userId))
  }

  async sendToUser (userId: string, head: string): Promise<SendResult> {
    const k = this.#keys
    const { maxMessages, ttl } = this.#settings.queue
    const { size, ttl: logTtl } = this.#settings.resume
    const [id, queued] = await this.#cmd.cometSend(k.meta(userId), k.queue(userId), k.devices(userId), k.log(userId),
      k.userRoute(userId), Date.now(), head, maxMessages, ttl, this.#metaTtl, size, logTtl)
    return { id, queued: queued === 1 }
  }

  async requeue (userId: string, messages: Routed[]): Promise<void> {
    const { maxMessages, ttl } = this.#settings.queue
    if (maxMessages === 0 || messages.length === 0) return
    const args: Array<string | number | Buffer> = [this.#keys.meta(userId), this.#keys.queue(userId), maxMessages, ttl]
    for (const m of messages) args.push(m.id, Buffer.concat([Buffer.from(`${m.id}|`), m.frame]))
    await this.#cmd.cometRequeue(...args)
  }

  async publish (channel: string, frame: string): Promise<void> {
    await this.#cmd.publish(this.#keys.channelRoute(channel), frame)
  }

  async listenUser (userId: string): Promise<void> { await this.#sub.subscribe(this.#keys.userRoute(userId)) }
  async unlistenUser (userId: string): Promise<void> { await this.#sub.unsubscribe(this.#keys.userRoute(userId)) }
  async listenChannel (channel: string): Promise<void> { await this.#sub.subscribe(this.#keys.channelRoute(channel)) }
  async unlistenChannel (channel: string): Promise<void> { await this.#sub.unsubscribe(this.#keys.channelRoute(channel)) }

  async attach (userId: string, device: string, digest: string, since: number | null): Promise<AttachResult> {
    const k = this.#keys
    const s = this.#settings
    const reply = await this.#cmd.cometAttachBuffer(k.auth(userId), k.devices(userId), k.queue(userId), k.meta(userId), k.log(userId),
      digest, device, Date.now(), s.presenceTtl, s.maxDevices, s.evictOldest ? 1 : 0, k.userRoute(userId), this.#metaTtl,
      since === null ? '' : since)
    const status = String(reply[0])
    if (status !== 'ok') return { ok: false, reason: status === 'limit' ? 'limit' : 'revoked' }
    const recovered = String(reply[3])
    return {
      ok: true,
      dropped: Number(String(reply[1])),
      queued: (reply[2] as Buffer[]).map(parseRouted),
      recovered: recovered === '' ? null : recovered === '1',
      missed: (reply[4] as Buffer[]).map(parseRouted),
      synced: Number(String(reply[5]))
    }
  }

  async detach (userId: string, device: string): Promise<void> {
    const k = this.#keys
    await this.#cmd.cometDetach(k.devices(userId), k.meta(userId), device, Date.now(), this.#metaTtl)
  }

  async catchUp (userId: string, since: number): Promise<CatchUp> {
    const k = this.#keys
    const reply = await this.#cmd.cometCatchUpBuffer(k.queue(userId), k.meta(userId), k.log(userId), since)
    return {
      queued: (reply[0] as Buffer[]).map(parseRouted),
      recovered: String(reply[1]) === '1',
      missed: (reply[2] as Buffer[]).map(parseRouted)
    }
  }

  /**
   * A subscriber can go deaf without an error (a proxy or failover that drops the stream): if the last
   * probe did not come back in a whole heartbeat, reconnect it; ioredis subscribes to everything again.
   */
  async maintain (): Promise<void> {
    if (this.#probeOut && this.#sub.status === 'ready') {
      this.#log.warn('comet: redis subscriber stopped receiving; reconnecting it')
      this.#sub.disconnect(true)
    }
    this.#probeOut = true
    await this.#cmd.publish(this.#probe, '')
  }

  async refresh (devices: Map<string, string[]>): Promise<void> {
    const now = Date.now()
    const ttl = this.#settings.presenceTtl
    const work: Array<Promise<unknown>> = []
    // ZADD, not ZADD XX: if Redis lost its data, the heartbeat puts this instance's devices back.
    for (const [userId, ids] of devices) {
      work.push(this.#cmd.cometRefresh(this.#keys.devices(userId), this.#keys.meta(userId), now + ttl, ttl, now, this.#metaTtl, ...ids))
    }
    await Promise.all(work)
  }

  async presence (userId: string): Promise<Presence> {
    const k = this.#keys
    const [devices, seen] = await this.#cmd.cometPresence(k.devices(userId), k.meta(userId), Date.now())
    return { online: devices > 0, devices, lastSeen: devices > 0 ? new Date() : seen === null ? null : new Date(Number(seen)) }
  }

  async close (): Promise<void> {
    await quit(this.#sub)
    if (this.#ownsCmd) await quit(this.#cmd)
  }
}

/** Resolves once the client is connected; rejects if its first attempt fails. */
async function whenReady (client: Redis): Promise<void> {
  if (client.status === 'ready') return
  await new Promise<void>((resolve, reject) => {
    const settle = (err?: Error): void => {
      client.off('ready', settle).off('error', settle).off('end', ended)
      if (err === undefined) resolve()
      else reject(err)
    }
    const ended = (): void => settle(new Error('connection closed'))
    client.on('ready', settle).on('error', settle).on('end', ended)
  })
}

/** QUIT with a bound, then cut the connection: shutdown must not hang on an unreachable Redis. */
async function quit (client: Redis): Promise<void> {
  if (client.status === 'end') return
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([client.quit(), new Promise((resolve) => { timer = setTimeout(resolve, 2000) })])
  } catch { /* already closing */ } finally {
    clearTimeout(timer)
    client.disconnect()
  }
}
