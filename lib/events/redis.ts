import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import type { Redis } from 'ioredis'
import { quit, whenReady } from '../store/redis/client.ts'
import { defineScripts } from '../store/redis/script.ts'
import { Keys } from '../store/redis/keys.ts'
import { status } from '../store/redis/scripts.ts'
import type { PresenceSet } from '../store/channels.ts'
import type { ChannelStore } from '../store/channels.ts'
import type { Listeners } from './listeners.ts'
import { Ordered } from './listeners.ts'
import { PARTITIONS, STREAM_MAX } from './lua.ts'
import { toEvent } from './types.ts'
import type { ServerEvent, ServerEventType, StoreEvent } from './types.ts'
import type { Webhook } from './webhooks.ts'

/** Entries one read takes at most. */
const READ_COUNT = 100
/** Entries read and not yet acknowledged, per consumer, above which it stops reading. */
const MAX_IN_FLIGHT = 1000
/** Lapsed users or channels one sweep looks at. */
const SWEEP_COUNT = 200

type Entry = [id: string, fields: string[]]

interface Commands {
  cometEventsSweepUser (...args: Array<string | number>): Promise<null>
  cometEventsTrim (...args: Array<string | number>): Promise<string[]>
}

/**
 * KEYS: a stream. ARGV: idle ms after which a consumer with nothing pending is forgotten (an instance
 * gone). Drops the entries every group is done with: before the oldest unacknowledged entry of each group,
 * or up to what it last read; MAXLEN bounds the rest (a group nobody reads any more). Returns the groups
 * that MAXLEN made miss entries they had not read yet.
 */
const trimAcked = {
  numberOfKeys: 1,
  lua: `
local function older (a, b)
  local am, as = string.match(a, '^(%d+)-(%d+)$')
  local bm, bs = string.match(b, '^(%d+)-(%d+)$')
  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), tonumber(bs)
  return am < bm or (am == bm and as < bs)
end
local stream = {}
local raw = redis.call('XINFO', 'STREAM', KEYS[1])
for i = 1, #raw, 2 do stream[raw[i]] = raw[i + 1] end
local floor, missed = nil, {}
for _, group in ipairs(redis.call('XINFO', 'GROUPS', KEYS[1])) do
  local info = {}
  for i = 1, #group, 2 do info[group[i]] = group[i + 1] end
  local mark = info['last-delivered-id']
  if older(mark, stream['max-deleted-entry-id']) then missed[#missed + 1] = info['name'] end
  if tonumber(info['pending']) > 0 then mark = redis.call('XPENDING', KEYS[1], info['name'])[2] end
  if floor == nil or older(mark, floor) then floor = mark end
  for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], info['name'])) do
    local c = {}
    for i = 1, #consumer, 2 do c[consumer[i]] = consumer[i + 1] end
    if tonumber(c['pending']) == 0 and tonumber(c['idle']) > tonumber(ARGV[1]) then
      redis.call('XGROUP', 'DELCONSUMER', KEYS[1], info['name'], c['name'])
    end
  end
end
if floor ~= nil then redis.call('XTRIM', KEYS[1], 'MINID', floor) end
return missed
`
}

/**
 * KEYS: devices, meta, lapse index. ARGV: now, status route, fresh, heartbeat, user. A user whose devices
 * may have lapsed (their instance died): the status sweep sends offline if so; the index then forgets the
 * user, or looks again when the grace period ends or a heartbeat later.
 */
const sweepUser = {
  numberOfKeys: 3,
  lua: status + `
local now = tonumber(ARGV[1])
local due = settle(KEYS[1], KEYS[2], ARGV[2], now, ARGV[3], now)
if redis.call('HEXISTS', KEYS[2], 'on') == 0 then
  redis.call('ZREM', KEYS[3], ARGV[5])
else
  redis.call('ZADD', KEYS[3], due or (now + tonumber(ARGV[4])), ARGV[5])
end
`
}

/** Renews (PEXPIRE) or releases (DEL) a lease only while this instance holds it. */
const RENEW = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end return 0"
const RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"

export interface RedisEventsContext {
  client: Redis
  sharded: boolean
  prefix: string
  log: FastifyBaseLogger
  heartbeatInterval: number
  listeners: Listeners
  webhooks: Webhook[]
  /** The presence set of a channel, to sweep it (lib/channels/presence.ts). */
  channelSet: (channel: string) => PresenceSet
  channels: ChannelStore
  stop: AbortSignal
}

/**
 * Server events on Redis (docs/events.md). The store's scripts append each event to one of PARTITIONS
 * streams (by user or channel) while the `on` key says someone consumes. Each consumer kind is a consumer
 * group: `listeners` (the app's listeners, on the instances that have some) and one per webhook. A group's
 * streams are split into units, each held by one instance at a time through a lease; a unit's holder
 * claims what the previous holder left unacknowledged (XAUTOCLAIM), then reads new entries. Listeners
 * get a unit per stream, so work spreads over instances while a user's events stay in one place and in
 * order; a webhook is one unit over every stream, so one instance sends its batches, in order.
 */
export class RedisEvents {
  #ctx: RedisEventsContext
  #keys: Keys
  #base: string
  #me = randomBytes(6).toString('hex')
  #run: Commands
  #consumers: Consumer[] = []
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | null = null
  #started = false

  constructor (ctx: RedisEventsContext) {
    this.#ctx = ctx
    this.#keys = new Keys(ctx.prefix)
    this.#base = `${ctx.prefix}{e}:`
    this.#run = defineScripts<Commands>(ctx.client, [['cometEventsSweepUser', sweepUser], ['cometEventsTrim', trimAcked]], ctx.sharded)
    const streams = Array.from({ length: PARTITIONS }, (_, n) => `${this.#base}s${n}`)
    this.#consumers.push(new ListenerConsumer(this, 'listeners', streams.map((s) => [s])))
    for (const webhook of ctx.webhooks) {
      // Named by a digest: a URL may carry a token, which has no business in Redis key names.
      const { url, types } = webhook.settings
      const name = createHash('sha256').update(`${url}|${[...types ?? []].sort().join(',')}`).digest('hex').slice(0, 16)
      this.#consumers.push(new WebhookConsumer(this, `webhook:${name}`, [streams], webhook))
    }
  }

  get ctx (): RedisEventsContext { return this.#ctx }
  get me (): string { return this.#me }
  get base (): string { return this.#base }

  /** Starts (or wakes) the consumers: call when listeners or webhooks appear. */
  wake (): void {
    if (this.#started || this.#ctx.stop.aborted) return
    this.#started = true
    const every = Math.max(50, Math.floor(this.#ctx.heartbeatInterval / 2))
    this.#timer = setInterval(() => { this.#tick() }, every)
    this.#timer.unref()
    this.#tick()
  }

  #tick (): void {
    if (this.#ticking !== null || this.#ctx.stop.aborted) return
    this.#ticking = this.#beat().catch((err: unknown) => {
      if (!this.#ctx.stop.aborted) this.#ctx.log.warn({ err }, 'comet: events heartbeat failed')
    }).finally(() => { this.#ticking = null })
  }

  /** Lease time: a dead holder's units pass to another instance within it. */
  get leaseTtl (): number { return 3 * this.#ctx.heartbeatInterval }

  async #beat (): Promise<void> {
    const active = this.#consumers.filter((c) => c.active)
    // Groups exist before the `on` key: nothing is appended that no group will see.
    for (const consumer of active) await consumer.ensureStarted()
    if (active.length > 0) await this.#ctx.client.set(`${this.#base}on`, '1', 'PX', this.leaseTtl)
    for (const consumer of this.#consumers) await consumer.balance()
    if (this.#consumers.some((c) => c.holds)) await this.#sweep()
    const streams = new Set(this.#consumers.flatMap((c) => c.streams))
    await Promise.all([...streams].map(async (stream) => {
      const missed = await this.#run.cometEventsTrim(stream, 10 * this.leaseTtl)
      if (missed.length > 0) {
        this.#ctx.log.error({ stream, groups: missed, max: STREAM_MAX }, 'comet: server events were trimmed before they were read: the backlog passed the stream cap')
      }
    }))
  }

  /** Users and channels whose last instance may have died: a sweep sends their offline / leave / vacated. */
  async #sweep (): Promise<void> {
    const { client, heartbeatInterval } = this.#ctx
    const now = Date.now()
    const users = await client.zrangebyscore(`${this.#base}users`, '-inf', now, 'LIMIT', 0, SWEEP_COUNT)
    const k = this.#keys
    await Promise.all(users.map(async (user) => await this.#run.cometEventsSweepUser(k.devices(user), k.meta(user), `${this.#base}users`,
      now, k.statusRoute(user), now + heartbeatInterval, heartbeatInterval, user)))
    const channels = await client.zrangebyscore(`${this.#base}channels`, '-inf', now, 'LIMIT', 0, SWEEP_COUNT)
    await Promise.all(channels.map(async (channel) => await this.#ctx.channels.beat(this.#ctx.channelSet(channel), [])))
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    await this.#ticking
    await Promise.all(this.#consumers.map(async (c) => await c.close()))
  }
}

/** One consumer group on this instance: its leases, its reads, what it has in flight. */
abstract class Consumer {
  readonly group: string
  protected events: RedisEvents
  /** The streams of each unit. */
  #units: string[][]
  #held = new Set<number>()
  #releasing = new Set<number>()
  #inFlight = new Map<number, number>()
  /** Entries (`<stream> <id>`) being handled here: a claim after a lease hiccup must not start them twice. */
  #handling = new Set<string>()
  #conn: Redis | null = null
  #reading: Promise<void> | null = null
  #groupsMade = false

  constructor (events: RedisEvents, group: string, units: string[][]) {
    this.events = events
    this.group = group
    this.#units = units
  }

  abstract get active (): boolean
  /** `done` acknowledges the entry; `abandon` leaves it unacknowledged, for the unit's next holder. */
  protected abstract handle (event: ServerEvent, key: string, done: () => void, abandon: () => void): void

  get holds (): boolean { return this.#held.size > 0 }
  /** The streams of the units held here. */
  get streams (): string[] { return [...this.#held].flatMap((unit) => this.#units[unit]!) }
  get inFlight (): number { return this.#handling.size }

  #lease (unit: number): string { return `${this.events.base}lease:${this.group}:${unit}` }
  #members (): string { return `${this.events.base}members:${this.group}` }

  async ensureStarted (): Promise<void> {
    const { client } = this.events.ctx
    if (!this.#groupsMade) {
      for (const stream of new Set(this.#units.flat())) {
        try {
          await client.xgroup('CREATE', stream, this.group, '$', 'MKSTREAM')
        } catch (err) {
          if (!String((err as Error).message).startsWith('BUSYGROUP')) throw err
        }
      }
      this.#groupsMade = true
    }
    if (this.#conn === null) {
      // Blocking reads get a connection of their own.
      this.#conn = client.duplicate({ enableOfflineQueue: true })
      this.#conn.on('error', (err: Error) => this.events.ctx.log.warn({ err, role: 'events' }, 'comet: redis connection error'))
      this.#reading = this.#readLoop()
    }
  }

  /**
   * Takes this instance's share of the units (all of them divided by the live members), renews what it
   * holds, and hands back what is over its share once its work there is done.
   */
  async balance (): Promise<void> {
    const { client } = this.events.ctx
    const me = this.events.me
    const ttl = this.events.leaseTtl
    const now = Date.now()
    if (!this.active) {
      for (const unit of this.#held) this.#releasing.add(unit)
    } else {
      await client.zadd(this.#members(), now + ttl, me)
      await client.pexpire(this.#members(), ttl)
    }
    await client.zremrangebyscore(this.#members(), '-inf', now)
    for (const unit of this.#held) {
      if (Number(await client.eval(RENEW, 1, this.#lease(unit), me, ttl)) === 0) {
        this.#held.delete(unit)
        this.#releasing.delete(unit)
      }
    }
    for (const unit of this.#releasing) {
      if ((this.#inFlight.get(unit) ?? 0) > 0) continue
      await client.eval(RELEASE, 1, this.#lease(unit), me)
      this.#held.delete(unit)
      this.#releasing.delete(unit)
    }
    if (!this.active) return
    const share = Math.ceil(this.#units.length / Math.max(1, await client.zcard(this.#members())))
    if (this.#held.size > share && this.#releasing.size === 0) {
      this.#releasing.add([...this.#held].at(-1)!)
    }
    const free = this.#units.map((_, n) => n).filter((n) => !this.#held.has(n)).sort(() => Math.random() - 0.5)
    for (const unit of free) {
      if (this.#held.size - this.#releasing.size >= share) break
      if (await client.set(this.#lease(unit), me, 'PX', ttl, 'NX') !== 'OK') continue
      await this.#claim(unit)
      this.#held.add(unit)
    }
  }

  /** Takes over what the unit's previous holder read and never acknowledged, oldest first. */
  async #claim (unit: number): Promise<void> {
    const { client } = this.events.ctx
    for (const stream of this.#units[unit]!) {
      let cursor = '0-0'
      do {
        const [next, entries, deleted] = await client.xautoclaim(stream, this.group, this.events.me, 0, cursor, 'COUNT', READ_COUNT) as [string, Array<Entry | null>, string[]?]
        this.#dispatch(stream, unit, entries.filter((e): e is Entry => e !== null))
        if (deleted !== undefined && deleted.length > 0) await client.xack(stream, this.group, ...deleted)
        cursor = next
      } while (cursor !== '0-0')
    }
  }

  async #readLoop (): Promise<void> {
    const conn = this.#conn!
    const { stop, log, heartbeatInterval } = this.events.ctx
    const block = Math.max(50, Math.min(1000, Math.floor(heartbeatInterval / 2)))
    while (!stop.aborted) {
      const units = [...this.#held].filter((u) => !this.#releasing.has(u))
      if (units.length === 0 || this.inFlight >= MAX_IN_FLIGHT) {
        await sleep(block, undefined, { signal: stop }).catch(() => {})
        continue
      }
      const streams: string[] = []
      const unitOf = new Map<string, number>()
      for (const unit of units) {
        for (const stream of this.#units[unit]!) {
          streams.push(stream)
          unitOf.set(stream, unit)
        }
      }
      try {
        await whenReady(conn)
        const reply = await conn.xreadgroup('GROUP', this.group, this.events.me, 'COUNT', READ_COUNT, 'BLOCK', block,
          'STREAMS', ...streams, ...streams.map(() => '>')) as Array<[string, Entry[]]> | null
        // Oldest first across the streams too: a webhook's batches follow the order events happened in.
        const read: Array<[string, Entry]> = []
        for (const [stream, entries] of reply ?? []) for (const entry of entries) read.push([stream, entry])
        read.sort(([, [x]], [, [y]]) => compareIds(x, y))
        for (const [stream, entry] of read) this.#dispatch(stream, unitOf.get(stream)!, [entry])
      } catch (err) {
        if (stop.aborted) return
        if (String((err as Error).message).startsWith('NOGROUP')) this.#groupsMade = false
        log.warn({ err, group: this.group }, 'comet: reading server events failed; retrying')
        await sleep(block, undefined, { signal: stop }).catch(() => {})
      }
    }
  }

  #dispatch (stream: string, unit: number, entries: Entry[]): void {
    for (const [id, fields] of entries) {
      // Stream ids repeat across streams.
      const handle = `${stream} ${id}`
      if (this.#handling.has(handle)) continue
      this.#handling.add(handle)
      this.#inFlight.set(unit, (this.#inFlight.get(unit) ?? 0) + 1)
      let settled = false
      const forget = (): void => {
        if (settled) return
        settled = true
        this.#handling.delete(handle)
        this.#inFlight.set(unit, this.#inFlight.get(unit)! - 1)
      }
      const ack = (): void => { this.#ack(stream, id).finally(forget) }
      const raw = parse(fields)
      if (raw === null) {
        ack()
        continue
      }
      raw.at = Number(id.slice(0, id.indexOf('-')))
      // Unique across the streams, and the same for every delivery of the entry.
      const eventId = `${id}-${stream.slice(stream.lastIndexOf('s') + 1)}`
      this.handle(toEvent(raw, eventId), raw.key, ack, forget)
    }
  }

  async #ack (stream: string, id: string): Promise<void> {
    try {
      await this.events.ctx.client.xack(stream, this.group, id)
    } catch (err) {
      // Unacknowledged, it goes to the next holder of the unit: at least once.
      this.events.ctx.log.warn({ err, group: this.group }, 'comet: acknowledging a server event failed')
    }
  }

  /** Stops reading; waits a moment for work in flight, then hands the units back for others to take. */
  async close (): Promise<void> {
    this.#conn?.disconnect()
    await this.#reading
    const deadline = Date.now() + 2000
    while (this.inFlight > 0 && Date.now() < deadline) await sleep(10)
    const { client } = this.events.ctx
    try {
      for (const unit of this.#held) await client.eval(RELEASE, 1, this.#lease(unit), this.events.me)
      await client.zrem(this.#members(), this.events.me)
    } catch { /* the leases lapse */ }
    this.#held.clear()
    if (this.#conn !== null) await quit(this.#conn)
  }
}

class ListenerConsumer extends Consumer {
  #ordered = new Ordered()

  get active (): boolean { return this.events.ctx.listeners.size > 0 }

  protected handle (event: ServerEvent, key: string, done: () => void, abandon: () => void): void {
    const { listeners } = this.events.ctx
    this.#ordered.push(key, async () => {
      // Instances are expected to register the same listeners; a type this one has none for is skipped.
      if (listeners.has(event.type)) await listeners.run(event)
    }).then(done, abandon)
  }
}

class WebhookConsumer extends Consumer {
  #webhook: Webhook

  constructor (events: RedisEvents, group: string, units: string[][], webhook: Webhook) {
    super(events, group, units)
    this.#webhook = webhook
  }

  get active (): boolean { return true }

  protected handle (event: ServerEvent, _key: string, done: () => void): void {
    if (!this.#webhook.wants(event.type)) return done()
    this.#webhook.push(event, done)
  }
}

function compareIds (x: string, y: string): number {
  const [xm, xs] = x.split('-').map(Number) as [number, number]
  const [ym, ys] = y.split('-').map(Number) as [number, number]
  return xm - ym || xs - ys
}

/** A stream entry's fields (lib/events/lua.ts) as a StoreEvent, or null for one this version cannot read. */
function parse (fields: string[]): StoreEvent | null {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  const type = f['t'] as ServerEventType | undefined
  const key = f['k']
  if (type === undefined || key === undefined) return null
  const raw: StoreEvent = { type, key, at: 0 }
  const subject = key.slice(2)
  if (key.startsWith('u:')) raw.userId = subject
  else raw.channel = subject
  if (f['u'] !== undefined) raw.userId = f['u']
  if (f['n'] !== undefined) raw.count = Number(f['n'])
  if (type === 'offline') raw.lastSeen = f['s'] === undefined || f['s'] === '' ? null : Number(f['s'])
  return raw
}
