import { createHash, randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import type { FastifyBaseLogger } from 'fastify'
import { Cluster } from 'ioredis'
import type { Redis } from 'ioredis'
import { quit, whenReady } from '../store/redis/client.ts'
import type { Client } from '../store/redis/client.ts'
import { loadScripts, script } from '../store/redis/script.ts'
import type { Scripts } from '../store/redis/script.ts'
import { Keys } from '../store/redis/keys.ts'
import { slotOf } from '../store/redis/slots.ts'
import type { PresenceSet } from '../store/channels.ts'
import type { ChannelStore } from '../store/channels.ts'
import type { Listeners } from './listeners.ts'
import { Ordered } from './listeners.ts'
import { PARTITION_TAGS, STREAM_MAX } from './lua.ts'
import { EVENT_TYPES, toEvent } from './types.ts'
import type { ServerEvent, ServerEventType, StoreEvent } from './types.ts'
import type { Webhook } from './webhooks.ts'

/** Entries one read takes at most. */
const READ_COUNT = 100
/** Entries read and not yet acknowledged, per consumer, above which it stops reading. */
const MAX_IN_FLIGHT = 1000
/** Lapsed users or channels one sweep looks at. */
const SWEEP_COUNT = 200

type Entry = [id: string, fields: string[]]

const file = (name: string): URL => new URL(`./lua/${name}.lua`, import.meta.url)

/** The scripts of server events, in lua/. */
const scripts = {
  /** Returns the groups that missed entries to the stream cap. */
  trimAcked: script<string[]>()({ keys: ['stream'], argv: ['idle'], body: file('trim-acked') }),
  sweepUser: script<null>()({ keys: ['devices', 'meta'], argv: ['now', 'status_route', 'fresh', 'heartbeat', 'user'], libs: ['events', 'status'], body: file('sweep-user') }),
  forgetSwept: script<null>()({ keys: ['index'], argv: ['now'], list: 'members', body: file('forget-swept') }),
  handOff: script<number>()({ keys: ['on', 'stream'], argv: ['max', 'subject', 'event'], body: file('hand-off') }),
  /** ttl 0 releases. Returns 1 while this instance holds the lease. */
  lease: script<number>()({ keys: ['lease'], argv: ['me', 'ttl'], body: file('lease') })
}

export interface RedisEventsContext {
  client: Client
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

/** A partition's keys (lib/events/lua.ts). */
interface Partition { on: string, stream: string, users: string, channels: string }

/**
 * Server events on Redis (docs/events.md). The store's scripts append each event to the stream of one of
 * the partitions (by user or channel) while its `on` key says someone consumes. Each consumer kind is a
 * consumer group: `listeners` (the app's listeners, on the instances that have some) and one per webhook.
 * A group's streams are split into units, each held by one instance at a time through a lease; a unit's
 * holder claims what the previous holder left unacknowledged (XAUTOCLAIM), then reads new entries.
 * Listeners get a unit per partition, so work spreads over instances while a user's events stay in one
 * place and in order, and a unit per event type: an event whose type the partition's holder has no
 * listener for is handed to that type's stream, read by an instance that has one. A webhook is one unit
 * over every partition, so one instance sends its batches, in order.
 */
export class RedisEvents {
  #ctx: RedisEventsContext
  #keys: Keys
  #base: string
  #me = randomBytes(6).toString('hex')
  #run: Scripts<typeof scripts>
  #partitions: Partition[]
  #consumers: Consumer[] = []
  #timer: NodeJS.Timeout | undefined
  #ticking: Promise<void> | null = null
  #started = false
  /** Cluster masters last found serving no partition, as logged. */
  #bare = ''

  constructor (ctx: RedisEventsContext) {
    this.#ctx = ctx
    this.#keys = new Keys(ctx.prefix)
    this.#base = `${ctx.prefix}{e}:`
    this.#run = loadScripts(ctx.client, scripts, ctx.sharded)
    this.#partitions = PARTITION_TAGS.map((tag) => {
      const base = `${ctx.prefix}{${tag}}:`
      return { on: `${base}on`, stream: `${base}s`, users: `${base}users`, channels: `${base}channels` }
    })
    const streams = this.#partitions.map((p) => p.stream)
    this.#consumers.push(new ListenerConsumer(this, 'listeners', [...streams.map((s) => [s]), ...EVENT_TYPES.map((type) => [this.typeStream(type)])]))
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

  /** A partition's number from its stream key, or -1 for a type's stream. */
  partitionOf (stream: string): number { return this.#partitions.findIndex((p) => p.stream === stream) }
  /** Where events of a type wait for an instance with a listener for it; its `on` says one listens. */
  typeStream (type: ServerEventType): string { return `${this.#ctx.prefix}{e:${type}}:s` }
  #typeOn (type: ServerEventType): string { return `${this.#ctx.prefix}{e:${type}}:on` }

  /** Hands an event to an instance with a listener for its type; with none, the event is dropped. */
  async handOff (event: ServerEvent, key: string): Promise<void> {
    const { type } = event
    await this.#run.handOff({ on: this.#typeOn(type), stream: this.typeStream(type), max: STREAM_MAX, subject: key, event: JSON.stringify(event) })
  }

  /** Renews a lease of this instance for `ttl` ms, or releases it (ttl 0); false if another holds it. */
  async lease (key: string, ttl: number): Promise<boolean> {
    return await this.#run.lease({ lease: key, me: this.#me, ttl }) === 1
  }

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
    const { client, listeners } = this.#ctx
    const ttl = this.leaseTtl
    if (client instanceof Cluster) this.#checkMasters(client)
    const active = this.#consumers.filter((c) => c.active)
    // Groups exist before the `on` keys: nothing is appended that no group will see.
    for (const consumer of active) await consumer.ensureStarted()
    if (active.length > 0) await Promise.all(this.#partitions.map(async (p) => await client.set(p.on, '1', 'PX', ttl)))
    await Promise.all(EVENT_TYPES.filter((type) => listeners.has(type)).map(async (type) => await client.set(this.#typeOn(type), '1', 'PX', ttl)))
    for (const consumer of this.#consumers) await consumer.balance()
    const streams = new Set(this.#consumers.flatMap((c) => c.streams))
    await this.#sweep(this.#partitions.filter((p) => streams.has(p.stream)))
    await Promise.all([...streams].map(async (stream) => {
      const missed = await this.#run.trimAcked({ stream, idle: 10 * ttl })
      if (missed.length > 0) {
        this.#ctx.log.error({ stream, groups: missed, max: STREAM_MAX }, 'comet: server events were trimmed before they were read: the backlog passed the stream cap')
      }
    }))
  }

  /** A Cluster master that serves no partition records no events of its users: say so, once per change. */
  #checkMasters (client: Cluster): void {
    const masters = new Set(client.slots.map((nodes) => nodes[0]).filter((node) => node !== undefined))
    const served = new Set(PARTITION_TAGS.map((tag) => client.slots[slotOf(tag)]?.[0]))
    const bare = [...masters].filter((node) => !served.has(node)).sort().join(',')
    if (bare !== '' && bare !== this.#bare) {
      this.#ctx.log.error({ masters: bare.split(',') }, 'comet: Redis Cluster masters serve no server-events partition: events of their users are not recorded (docs/events.md)')
    }
    this.#bare = bare
  }

  /**
   * Users and channels of the partitions held here whose last instance may have died: a sweep sends their
   * offline / leave / vacated.
   */
  async #sweep (partitions: Partition[]): Promise<void> {
    const { heartbeatInterval, channels, channelSet } = this.#ctx
    const k = this.#keys
    const now = Date.now()
    await Promise.all(partitions.flatMap((p) => [
      this.#sweepIndex(p.users, now, async (user) => await this.#run.sweepUser({
        devices: k.devices(user), meta: k.meta(user), now, status_route: k.statusRoute(user), fresh: now + heartbeatInterval, heartbeat: heartbeatInterval, user
      })),
      this.#sweepIndex(p.channels, now, async (channel) => await channels.beat(channelSet(channel), []))
    ]))
  }

  /** Sweeps the members of a lapse index that are due, then forgets those whose sweep moved them elsewhere. */
  async #sweepIndex (index: string, now: number, sweep: (member: string) => Promise<unknown>): Promise<void> {
    const due = await this.#ctx.client.zrangebyscore(index, '-inf', now, 'LIMIT', 0, SWEEP_COUNT)
    const results = await Promise.allSettled(due.map(sweep))
    const swept = due.filter((_, n) => results[n]!.status === 'fulfilled')
    if (swept.length > 0) await this.#run.forgetSwept({ index, now, members: swept })
    const failed = results.find((r) => r.status === 'rejected')
    if (failed !== undefined) throw failed.reason
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
  /** A connection for blocking reads; none on a Cluster, whose streams are read one by one. */
  #conn: Redis | null = null
  #reading: Promise<void> | null = null
  #groupsMade = false

  constructor (events: RedisEvents, group: string, units: string[][]) {
    this.events = events
    this.group = group
    this.#units = units
  }

  abstract get active (): boolean
  /** Whether this instance may hold the unit now. */
  protected eligible (_unit: number): boolean { return true }
  /** Whether the unit is one of those the live members share evenly; others go to any eligible member. */
  protected shared (_unit: number): boolean { return true }
  /** `done` acknowledges the entry; `abandon` leaves it unacknowledged, for the unit's next holder. */
  protected abstract handle (event: ServerEvent, key: string, done: () => void, abandon: () => void): void

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
    if (this.#reading === null) {
      if (!(client instanceof Cluster)) {
        // Blocking reads get a connection of their own.
        this.#conn = client.duplicate({ enableOfflineQueue: true })
        this.#conn.on('error', (err: Error) => this.events.ctx.log.warn({ err, role: 'events' }, 'comet: redis connection error'))
      }
      this.#reading = this.#readLoop()
    }
  }

  /**
   * Takes this instance's share of the units (the shared ones divided by the live members, and every other
   * one it is eligible for and nobody holds), renews what it holds, and hands back what is over its share
   * or no longer eligible once its work there is done.
   */
  async balance (): Promise<void> {
    const { client } = this.events.ctx
    const me = this.events.me
    const ttl = this.events.leaseTtl
    const now = Date.now()
    if (this.active) {
      await client.zadd(this.#members(), now + ttl, me)
      await client.pexpire(this.#members(), ttl)
    }
    for (const unit of this.#held) if (!this.active || !this.eligible(unit)) this.#releasing.add(unit)
    await client.zremrangebyscore(this.#members(), '-inf', now)
    for (const unit of this.#held) {
      if (!await this.events.lease(this.#lease(unit), ttl)) {
        this.#held.delete(unit)
        this.#releasing.delete(unit)
      }
    }
    for (const unit of this.#releasing) {
      if ((this.#inFlight.get(unit) ?? 0) > 0) continue
      await this.events.lease(this.#lease(unit), 0)
      this.#held.delete(unit)
      this.#releasing.delete(unit)
    }
    if (!this.active) return
    const sharedUnits = this.#units.map((_, n) => n).filter((n) => this.shared(n))
    const share = Math.ceil(sharedUnits.length / Math.max(1, await client.zcard(this.#members())))
    const kept = (): number => [...this.#held].filter((n) => this.shared(n) && !this.#releasing.has(n)).length
    const held = [...this.#held].filter((n) => this.shared(n))
    if (held.length > share && !held.some((n) => this.#releasing.has(n))) this.#releasing.add(held.at(-1)!)
    const free = this.#units.map((_, n) => n).filter((n) => !this.#held.has(n) && this.eligible(n)).sort(() => Math.random() - 0.5)
    for (const unit of free) {
      if (this.shared(unit) && kept() >= share) continue
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

  /**
   * New entries of the streams held: one blocking read on a single Redis; on a Cluster, where each stream
   * has its own slot, one read per stream, polled more slowly while nothing comes.
   */
  async #read (streams: string[], block: number): Promise<Array<[string, Entry[]]>> {
    const args = ['COUNT', READ_COUNT] as const
    if (this.#conn !== null) {
      await whenReady(this.#conn)
      return await this.#conn.xreadgroup('GROUP', this.group, this.events.me, ...args, 'BLOCK', block, 'STREAMS', ...streams, ...streams.map(() => '>')) as Array<[string, Entry[]]> | null ?? []
    }
    const { client } = this.events.ctx
    const replies = await Promise.all(streams.map(async (stream) =>
      await client.xreadgroup('GROUP', this.group, this.events.me, ...args, 'STREAMS', stream, '>') as Array<[string, Entry[]]> | null))
    return replies.flatMap((reply) => reply ?? [])
  }

  async #readLoop (): Promise<void> {
    const { stop, log, heartbeatInterval } = this.events.ctx
    const block = Math.max(50, Math.min(1000, Math.floor(heartbeatInterval / 2)))
    let idle = 0
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
        const reply = await this.#read(streams, block)
        // Oldest first across the streams too: a webhook's batches follow the order events happened in.
        const read: Array<[string, Entry]> = []
        for (const [stream, entries] of reply) for (const entry of entries) read.push([stream, entry])
        read.sort(([, [x]], [, [y]]) => compareIds(x, y))
        for (const [stream, entry] of read) this.#dispatch(stream, unitOf.get(stream)!, [entry])
        if (this.#conn === null) {
          idle = read.length > 0 ? 0 : Math.min(block, Math.max(25, idle * 2))
          if (idle > 0) await sleep(idle, undefined, { signal: stop }).catch(() => {})
        }
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
      const read = parse(fields, id, this.events.partitionOf(stream))
      if (read === null) ack()
      else this.handle(read.event, read.key, ack, forget)
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
      for (const unit of this.#held) await this.events.lease(this.#lease(unit), 0)
      await client.zrem(this.#members(), this.events.me)
    } catch { /* the leases lapse */ }
    this.#held.clear()
    if (this.#conn !== null) await quit(this.#conn)
  }
}

/** Units: one per partition (shared), then one per event type (for an instance with a listener for it). */
class ListenerConsumer extends Consumer {
  #ordered = new Ordered()

  get active (): boolean { return this.events.ctx.listeners.size > 0 }

  #typeOf (unit: number): ServerEventType | undefined {
    return unit < PARTITION_TAGS.length ? undefined : EVENT_TYPES[unit - PARTITION_TAGS.length]
  }

  protected override eligible (unit: number): boolean {
    const type = this.#typeOf(unit)
    return type === undefined || this.events.ctx.listeners.has(type)
  }

  protected override shared (unit: number): boolean { return this.#typeOf(unit) === undefined }

  protected handle (event: ServerEvent, key: string, done: () => void, abandon: () => void): void {
    const { listeners, stop, log, heartbeatInterval } = this.events.ctx
    this.#ordered.push(key, async () => {
      if (listeners.has(event.type)) return await listeners.run(event)
      for (;;) {
        stop.throwIfAborted()
        try {
          await this.events.handOff(event, key)
          return
        } catch (err) {
          log.warn({ err, event: event.id, type: event.type }, 'comet: handing a server event to its type\'s listeners failed; retrying')
          await sleep(heartbeatInterval / 2, undefined, { signal: stop })
        }
      }
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

/**
 * A stream entry as its event and the subject it is ordered by (`u:<id>` / `c:<channel>`), or null for
 * one this version cannot read. A partition's entries hold the fields lib/events/lua.ts writes, and get
 * their id from the entry's and the partition's; a type's entries hold the event handed off, id and all.
 */
function parse (fields: string[], id: string, partition: number): { event: ServerEvent, key: string } | null {
  const f: Record<string, string> = {}
  for (let i = 0; i + 1 < fields.length; i += 2) f[fields[i]!] = fields[i + 1]!
  const key = f['k']
  if (key === undefined) return null
  if (f['e'] !== undefined) return { event: JSON.parse(f['e']) as ServerEvent, key }
  const type = f['t'] as ServerEventType | undefined
  if (type === undefined || !EVENT_TYPES.includes(type)) return null
  const raw: StoreEvent = { type, key, at: Number(id.slice(0, id.indexOf('-'))) }
  const subject = key.slice(2)
  if (key.startsWith('u:')) raw.userId = subject
  else raw.channel = subject
  if (f['u'] !== undefined) raw.userId = f['u']
  if (f['n'] !== undefined) raw.count = Number(f['n'])
  if (type === 'offline') raw.lastSeen = f['s'] === undefined || f['s'] === '' ? null : Number(f['s'])
  // Unique across the streams, and the same for every delivery of the entry.
  return { event: toEvent(raw, `${id}-${partition}`), key }
}
