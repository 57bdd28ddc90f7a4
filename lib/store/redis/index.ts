import { randomBytes } from 'node:crypto'
import { setTimeout as sleep } from 'node:timers/promises'
import { Cluster, Redis } from 'ioredis'
import { freshAfter, parseRouted } from '../types.ts'
import type { AttachResult, AuthProof, BusHandlers, CatchUp, Once, Routed, SendResult, Store, StoreSettings, UserStatus } from '../types.ts'
import { Keys } from './keys.ts'
import { userScripts } from './scripts.ts'
import { RedisChannels } from './channels.ts'
import { routeChannel } from '../channels.ts'
import { slotOf } from './slots.ts'
import { whenReady, connect, quit } from './client.ts'
import { shardSubscriber } from '../../internals.ts'
import type { Client, RedisSetting } from './client.ts'
import { TickBatcher } from './batch.ts'
import { paced } from '../../paced.ts'
import { loadScripts } from './script.ts'
import type { Scripts } from './script.ts'

/** Where the store reports connection trouble: the app's logger, or an emitter's. */
export interface StoreLog {
  warn (obj: object, msg: string): void
}

/** [subscribe (true) or unsubscribe, channel] */
type SubscriptionOp = [boolean, string]

/** What the send scripts take for one user. */
type SendCall = Parameters<Scripts<typeof userScripts>['send']>[0]

/** The single shard of a standalone Redis, for the probe bookkeeping. */
const STANDALONE = 'standalone'

export class RedisStore implements Store {
  #settings: StoreSettings
  #keys: Keys
  #cmd: Client
  #run: Scripts<typeof userScripts>
  #sub: Client | undefined
  #ownsCmd: boolean
  /** SPUBLISH/SSUBSCRIBE (one shard carries a channel) instead of PUBLISH/SUBSCRIBE (every node does). */
  #sharded: boolean
  #log: StoreLog
  #metaTtl: number
  /** The user's log key lives this long after what renews it (lua/lib/log.lua). */
  #logTtl: number
  #instance: string
  /** Probe channel per shard (master node key, or STANDALONE), and the shards with a probe out since (ms). */
  #probes = new Map<string, string>()
  #probeShards = new Map<string, string>()
  #probeOut = new Map<string, number>()
  /** Called when no probe is out any more. */
  #probeWaiters: Array<() => void> = []
  /** Per event-loop turn: a connect storm's SUBSCRIBEs share a command, as its digest reads share an MGET. */
  #subscriptions: TickBatcher<SubscriptionOp, undefined>
  #authReads: TickBatcher<string, string | null>
  readonly channels: RedisChannels

  constructor (redis: RedisSetting, settings: StoreSettings, log: StoreLog, shardedPubSub?: boolean) {
    this.#settings = settings
    this.#keys = new Keys(settings.keyPrefix, settings.statusChannel)
    this.#log = log
    this.#logTtl = settings.resume.ttl + Math.ceil(settings.presenceTtl * 4 / 3)
    // A send to a live device leaves the meta's lifetime to that device's heartbeat (lua/lib/deliver.lua).
    this.#metaTtl = Math.max(settings.lastSeenTtl, settings.queue.ttl, this.#logTtl) + settings.presenceTtl
    this.#ownsCmd = !(redis instanceof Redis || redis instanceof Cluster)
    this.#instance = randomBytes(6).toString('hex')
    const cmd = connect(redis)
    this.#sharded = cmd instanceof Cluster || shardedPubSub === true
    this.#cmd = cmd
    this.#run = loadScripts(cmd, userScripts, this.#sharded)
    this.#authReads = new TickBatcher(async (keys) => await cmd.mget(...keys), cmd instanceof Cluster ? slotOf : () => 0)
    // SSUBSCRIBE takes the channels of one slot.
    this.#subscriptions = new TickBatcher(async (ops) => await this.#subscribeInOrder(ops), this.#sharded ? ([, channel]) => slotOf(channel) : () => 0)
    this.channels = new RedisChannels(cmd, this.#keys, this.#sharded, settings.messageTail, async (route, message) => await this.#publish(route, message))
    if (this.#ownsCmd) cmd.on('error', (err: Error) => log.warn({ err, role: 'commands' }, 'comet: redis connection error'))
  }

  /** The routing connection, opened by start(). */
  get #routing (): Client {
    if (this.#sub === undefined) throw new Error('comet: the store routes nothing before start()')
    return this.#sub
  }

  /**
   * A subscribed connection cannot run commands: routing gets a connection of its own, always ours, opened
   * by start() (an emitter only sends). On a Cluster that is a second Cluster whose sharded subscriber
   * group keeps one connection per master. Its slot map is refreshed every heartbeat too: a moved slot's
   * subscriptions follow the slot even when the refresh that the old owner's SUNSUBSCRIBE triggers still
   * read the old map from a lagging node.
   */
  #openSubscriber (): Client {
    const cmd = this.#cmd
    const sub = cmd instanceof Cluster
      ? cmd.duplicate([], { shardedSubscribers: true, enableAutoPipelining: false, slotsRefreshInterval: this.#settings.presenceTtl / 3 })
      : cmd.duplicate({ enableOfflineQueue: true })
    sub.on('error', (err: Error) => this.#log.warn({ err, role: 'subscriber' }, 'comet: redis connection error'))
    return sub
  }

  async #subscribe (channel: string): Promise<void> { await this.#subscriptions.add([true, channel]) }
  async #unsubscribe (channel: string): Promise<void> { await this.#subscriptions.add([false, channel]) }

  /**
   * The (un)subscriptions of one turn (of one slot when sharded), in the order asked: each run of one kind
   * is one command, and the runs go out in order, so an UNSUBSCRIBE never overtakes the SUBSCRIBE of the
   * same channel asked before it.
   */
  async #subscribeInOrder (ops: SubscriptionOp[]): Promise<Array<undefined | Error>> {
    const runs: Array<Promise<void>> = []
    const runOf: number[] = []
    for (let i = 0; i < ops.length;) {
      const [subscribe] = ops[i]!
      const channels: string[] = []
      for (; i < ops.length && ops[i]![0] === subscribe; i++) {
        channels.push(ops[i]![1])
        runOf.push(runs.length)
      }
      runs.push(subscribe ? this.#subscribeNow(channels) : this.#unsubscribeNow(channels))
    }
    const settled = await Promise.allSettled(runs)
    return runOf.map((run) => {
      const result = settled[run]!
      return result.status === 'fulfilled' ? undefined : result.reason as Error
    })
  }

  async #subscribeNow (channels: string[]): Promise<void> {
    if (!this.#sharded) {
      await this.#routing.subscribe(...channels)
      return
    }
    // During a reshard or failover the subscriber group may still point at the old owner of the slot:
    // it refreshes its map on the MOVED reply, so try again a few times before giving up.
    for (let attempt = 1; ; attempt++) {
      try {
        await this.#routing.ssubscribe(...channels)
        return
      } catch (err) {
        if (attempt === 5 || !(this.#routing instanceof Cluster)) throw err
        await sleep(100 * attempt)
      }
    }
  }

  async #unsubscribeNow (channels: string[]): Promise<void> {
    if (this.#sharded) await this.#routing.sunsubscribe(...channels)
    else await this.#routing.unsubscribe(...channels)
  }

  async #publish (channel: string, message: string): Promise<number> {
    return Number(this.#sharded ? await this.#cmd.spublish(channel, message) : await this.#cmd.publish(channel, message))
  }

  /**
   * The shards to probe: each master of a Cluster (with a probe channel whose slot it serves), or the one
   * Redis. Subscribes new probe channels after a topology change and drops those of vanished masters.
   */
  async #probeTargets (): Promise<void> {
    const wanted = new Map<string, string>()
    if (this.#routing instanceof Cluster) {
      const owners = this.#routing.slots
      const masters = new Set(owners.map((nodes) => nodes?.[0]).filter((n): n is string => n !== undefined))
      for (const master of masters) {
        let n = 0
        while (owners[slotOf(`i:${n}`)]?.[0] !== master) n++
        wanted.set(master, `${this.#keys.prefix}{i:${n}}${this.#instance}`)
      }
    } else {
      wanted.set(STANDALONE, this.#keys.probeRoute(this.#instance))
    }
    for (const [shard, channel] of this.#probes) {
      if (wanted.get(shard) === channel) continue
      this.#probes.delete(shard)
      this.#probeShards.delete(channel)
      this.#probeOut.delete(shard)
      if (![...wanted.values()].includes(channel)) await this.#unsubscribe(channel).catch(() => {})
    }
    const added: Array<Promise<void>> = []
    for (const [shard, channel] of wanted) {
      if (this.#probes.has(shard)) continue
      this.#probes.set(shard, channel)
      this.#probeShards.set(channel, shard)
      added.push(this.#subscribe(channel))
    }
    await Promise.all(added)
  }

  /** Sends a probe to every shard; each must come back through this instance's subscriber on that shard. */
  async #sendProbes (): Promise<void> {
    await this.#probeTargets()
    const sent: Array<Promise<number>> = []
    const now = Date.now()
    for (const [shard, channel] of this.#probes) {
      // The oldest unanswered probe counts: deaf means silent for most of a heartbeat, not just now asked.
      if (!this.#probeOut.has(shard)) this.#probeOut.set(shard, now)
      sent.push(this.#publish(channel, ''))
    }
    await Promise.all(sent)
  }

  #probeBack (channel: string): void {
    const shard = this.#probeShards.get(channel)
    if (shard !== undefined) this.#probeOut.delete(shard)
    if (this.#probeOut.size > 0) return
    for (const resolve of this.#probeWaiters.splice(0)) resolve()
  }

  /**
   * Resolves once a probe sent now has come back from every shard: the SSUBSCRIBEs written before it on
   * each shard's connection are in effect. Bounded: a shard that stays silent is the heartbeat's business.
   */
  async #allShardsHear (): Promise<void> {
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      new Promise<void>((resolve) => {
        this.#probeWaiters.push(resolve)
        this.#sendProbes().catch((err: unknown) => this.#log.warn({ err }, 'comet: resubscribe check failed'))
      }),
      new Promise<void>((resolve) => { timer = setTimeout(resolve, this.#settings.presenceTtl) })
    ])
    clearTimeout(timer)
  }

  /** Connects the command client: all an emitter needs. start() calls it. */
  async connect (): Promise<void> {
    if (this.#cmd instanceof Cluster) {
      await this.#cmd.ping()
      // Once connected, a Cluster that lost every node refuses commands at once (UNAVAILABLE) rather than
      // queueing them with no bound until it is back; a single failed node is handled by redirections.
      if (this.#ownsCmd) this.#cmd.options.enableOfflineQueue = false
    } else {
      await whenReady(this.#cmd)
      await this.#cmd.ping()
    }
  }

  async start (handlers: BusHandlers): Promise<void> {
    const keys = this.#keys
    this.#sub = this.#openSubscriber()
    this.#routing.on(this.#sharded ? 'smessageBuffer' : 'messageBuffer', (channelBuf: Buffer, message: Buffer) => {
      const channel = channelBuf.toString()
      const [kind, name] = keys.parseRoute(channel)
      if (kind === 'i') {
        this.#probeBack(channel)
        return
      }
      if (kind === 'c') return routeChannel(handlers, name, message)
      // A status route carries `!online` / `!offline` from the user's scripts, and the channel's own traffic.
      if (kind === 's') return message[0] === 33 /* ! */ ? handlers.status(name, message[2] === 110 /* n */) : routeChannel(handlers, keys.statusChannel(name), message)
      if (message[0] !== 33 /* ! */) return handlers.user(name, parseRouted(message))
      const control = message.toString()
      if (control === '!revoke') handlers.control(name, { kind: 'revoke' })
      else if (control.startsWith('!evict|')) handlers.control(name, { kind: 'evict', device: control.slice(7) })
      else if (control.startsWith('!synced|')) handlers.control(name, { kind: 'synced', device: control.slice(8) })
    })
    if (this.#routing instanceof Cluster) {
      await Promise.all([this.connect(), this.#routing.ping()])
      this.#routing.options.enableOfflineQueue = false
      // ioredis re-subscribes each shard's channels after a reconnect, a moved slot or a failover, then
      // says so (the SSUBSCRIBEs are written by then); once a probe behind them has come back from every
      // shard, routing is whole again and local sockets can catch up on what they missed in between.
      this.#routing.on('subscribersReady', () => handlers.resync(this.#allShardsHear()))
    } else {
      await this.connect()
      // After a reconnect ioredis subscribes to everything again; once a PING behind those SUBSCRIBEs comes
      // back, routing is whole again and local sockets can catch up on what they missed in between.
      const sub = this.#routing
      sub.on('ready', () => handlers.resync(sub.ping().then(() => {})))
    }
    await this.#probeTargets()
  }

  async setAuth (userId: string, digest: string, ttl: number | undefined): Promise<void> {
    const key = this.#keys.auth(userId)
    if (ttl === undefined) await this.#cmd.set(key, digest)
    else await this.#cmd.set(key, digest, 'PX', ttl)
  }

  async getAuth (userId: string): Promise<string | null> {
    return await this.#authReads.add(this.#keys.auth(userId))
  }

  async revokeAuth (userId: string): Promise<void> {
    const k = this.#keys
    await this.#run.revoke({
      auth: k.auth(userId),
      devices: k.devices(userId),
      revoked: k.revoked(userId),
      route: k.userRoute(userId),
      now: Date.now(),
      revocation_ttl: this.#settings.revocationTtl ?? 0
    })
  }

  async revokedAt (userId: string): Promise<number | null> {
    const at = await this.#cmd.get(this.#keys.revoked(userId))
    return at === null ? null : Number(at)
  }

  async authAttempt (address: string, max: number, window: number): Promise<[boolean, number, number]> {
    const [admitted, failures, left] = await this.#run.authAttempt({ attempts: this.#keys.authAttempts(address), max, window })
    return [admitted === 1, failures, left]
  }

  async authSettle (address: string, failed: boolean): Promise<[number, number]> {
    return await this.#run.authSettle({ attempts: this.#keys.authAttempts(address), failed: failed ? 1 : 0 })
  }

  /** The send script's arguments for one user. */
  #send (userId: string, head: string, now: number): SendCall {
    const k = this.#keys
    const { queue, resume } = this.#settings
    return {
      meta: k.meta(userId),
      queue: k.queue(userId),
      devices: k.devices(userId),
      log: k.log(userId),
      now,
      queue_max: queue.maxMessages,
      queue_ttl: queue.ttl,
      meta_ttl: this.#metaTtl,
      log_size: resume.size,
      log_ttl: this.#logTtl,
      log_span: resume.ttl,
      tail: this.#settings.messageTail,
      route: k.userRoute(userId),
      head
    }
  }

  async sendToUser (userId: string, head: string, once?: Once): Promise<SendResult> {
    const call = this.#send(userId, head, Date.now())
    const [id, queued] = once === undefined
      ? await this.#run.send(call)
      : await this.#run.sendOnce({ ...call, once: this.#keys.once(userId, once.key), once_ttl: once.ttl })
    return { id, queued: queued === 1 }
  }

  async sendToUsers (userIds: string[], head: string): Promise<SendResult[]> {
    const now = Date.now()
    const replies = await this.#run.sendMany.many(userIds.map((userId) => this.#send(userId, head, now)))
    return replies.map(([id, queued]) => ({ id, queued: queued === 1 }))
  }

  async requeue (userId: string, messages: Routed[]): Promise<void> {
    const { maxMessages, ttl } = this.#settings.queue
    if (maxMessages === 0 || messages.length === 0) return
    const entries: Array<number | Buffer> = []
    for (const m of messages) entries.push(m.id, Buffer.concat([Buffer.from(`${m.id}|`), m.frame]))
    await this.#run.requeue({ meta: this.#keys.meta(userId), queue: this.#keys.queue(userId), queue_max: maxMessages, queue_ttl: ttl, entries })
  }

  async listenUser (userId: string): Promise<void> { await this.#subscribe(this.#keys.userRoute(userId)) }
  async unlistenUser (userId: string): Promise<void> { await this.#unsubscribe(this.#keys.userRoute(userId)) }
  async listenChannel (channel: string): Promise<void> { await this.#subscribe(this.#keys.channelRoute(channel)) }
  async unlistenChannel (channel: string): Promise<void> { await this.#unsubscribe(this.#keys.channelRoute(channel)) }

  async attach (userId: string, device: string, proof: AuthProof, since: number | null): Promise<AttachResult> {
    const k = this.#keys
    const s = this.#settings
    const reply = await this.#run.attach({
      auth: k.auth(userId),
      devices: k.devices(userId),
      queue: k.queue(userId),
      meta: k.meta(userId),
      log: k.log(userId),
      revoked: k.revoked(userId),
      proof: 'digest' in proof ? proof.digest : `@${proof.issuedAt}`,
      device,
      now: Date.now(),
      presence_ttl: s.presenceTtl,
      max_devices: s.maxDevices,
      evict_oldest: s.evictOldest ? 1 : 0,
      route: k.userRoute(userId),
      meta_ttl: this.#metaTtl,
      since: since === null ? '' : since,
      log_cutoff: this.#logCutoff(),
      log_size: s.resume.size,
      log_ttl: this.#logTtl,
      log_span: s.resume.ttl,
      tail: s.messageTail,
      status_route: k.statusRoute(userId)
    })
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

  /** Resume-log entries with ids at or below this are older than `resume.ttl`. */
  #logCutoff (): number {
    return (Date.now() - this.#settings.resume.ttl) * 1000
  }

  async detach (userId: string, device: string): Promise<number | null> {
    const k = this.#keys
    const now = Date.now()
    const due = await this.#run.detach({
      devices: k.devices(userId),
      meta: k.meta(userId),
      device,
      now,
      meta_ttl: this.#metaTtl,
      status_route: k.statusRoute(userId),
      grace: this.#settings.presenceGrace,
      fresh: freshAfter(now, this.#settings)
    })
    return due === null ? null : Number(due)
  }

  async catchUp (userId: string, since: number): Promise<CatchUp> {
    const k = this.#keys
    const reply = await this.#run.catchUp({
      queue: k.queue(userId),
      meta: k.meta(userId),
      log: k.log(userId),
      since,
      log_cutoff: this.#logCutoff(),
      log_size: this.#settings.resume.size,
      log_span: this.#settings.resume.ttl,
      tail: this.#settings.messageTail
    })
    return {
      queued: (reply[0] as Buffer[]).map(parseRouted),
      recovered: String(reply[1]) === '1',
      missed: (reply[2] as Buffer[]).map(parseRouted)
    }
  }

  /**
   * A subscriber can go deaf without an error (a proxy or failover that drops the stream): if the last
   * probe did not come back in most of a heartbeat, reconnect it; ioredis subscribes to everything again.
   * On a Cluster only the deaf shard's connection is replaced.
   */
  async maintain (): Promise<void> {
    const due = Date.now() - this.#settings.presenceTtl / 4
    for (const [shard, sent] of this.#probeOut) {
      if (sent > due) continue
      this.#probeOut.delete(shard)
      this.#reconnectDeaf(shard)
    }
    await this.#sendProbes()
  }

  async refresh (devices: Map<string, string[]>): Promise<void> {
    const now = Date.now()
    const ttl = this.#settings.presenceTtl
    const k = this.#keys
    await paced(devices, async ([userId, ids]) => await this.#run.refresh({
      devices: k.devices(userId), meta: k.meta(userId), log: k.log(userId), lapse: now + ttl, presence_ttl: ttl, now, meta_ttl: this.#metaTtl, log_ttl: this.#logTtl, status_route: k.statusRoute(userId), ids
    }))
  }

  #reconnectDeaf (shard: string): void {
    const sub = this.#routing
    if (sub instanceof Cluster) {
      const conn = shardSubscriber(sub, shard)
      if (conn === null || conn.status !== 'ready') return
      this.#log.warn({ shard }, 'comet: redis shard subscriber stopped receiving; reconnecting it')
      // The group notices the ended connection, opens a new one and subscribes it again.
      conn.disconnect()
    } else if (sub.status === 'ready') {
      this.#log.warn({}, 'comet: redis subscriber stopped receiving; reconnecting it')
      sub.disconnect(true)
    }
  }

  async status (userId: string): Promise<UserStatus> {
    const k = this.#keys
    const now = Date.now()
    const [devices, seen, online, due] = await this.#run.readStatus({
      devices: k.devices(userId), meta: k.meta(userId), now, status_route: k.statusRoute(userId), fresh: freshAfter(now, this.#settings)
    })
    return { devices, seen: seen === null ? null : Number(seen), online: online === 1, due: due === null ? null : Number(due) }
  }

  async ping (): Promise<void> {
    await Promise.all([this.#cmd.ping(), this.#sub?.ping()])
  }

  async inspect (userId: string): Promise<{ devices: string[], queued: number }> {
    const k = this.#keys
    const [devices, queued] = await Promise.all([this.#cmd.zrangebyscore(k.devices(userId), `(${Date.now()}`, '+inf'), this.#cmd.zcard(k.queue(userId))])
    return { devices, queued }
  }

  /** Reports are fields of one hash, each JSON with its lapse time in front: `<lapse ms>|<json>`. */
  async report (instance: string, report: string | null, ttl: number): Promise<void> {
    const key = this.#keys.instances()
    if (report === null) {
      await this.#cmd.hdel(key, instance)
      return
    }
    await this.#cmd.multi().hset(key, instance, `${Date.now() + ttl}|${report}`).pexpire(key, ttl).exec()
  }

  async reports (): Promise<string[]> {
    const key = this.#keys.instances()
    const all = await this.#cmd.hgetall(key)
    const now = Date.now()
    const live: string[] = []
    const lapsed: string[] = []
    for (const [instance, value] of Object.entries(all)) {
      const bar = value.indexOf('|')
      if (Number(value.slice(0, bar)) > now) live.push(value.slice(bar + 1))
      else lapsed.push(instance)
    }
    if (lapsed.length > 0) await this.#cmd.hdel(key, ...lapsed)
    return live
  }

  /** What server events need (lib/events/redis.ts): the command connection, and how the scripts publish. */
  get link (): { client: Client, sharded: boolean } {
    return { client: this.#cmd, sharded: this.#sharded }
  }

  async close (): Promise<void> {
    if (this.#sub !== undefined) await quit(this.#sub)
    if (this.#ownsCmd) await quit(this.#cmd)
  }
}
