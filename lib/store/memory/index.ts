import { deviceAge, freshAfter, nextId } from '../types.ts'
import type { AttachResult, AuthProof, BusHandlers, CatchUp, Once, Routed, SendResult, Store, StoreSettings, UserStatus } from '../types.ts'
import { MemoryChannels } from './channels.ts'
import { OnceRecord } from './once.ts'
import type { EventSink } from '../../events/types.ts'

interface UserState {
  auth: { digest: string, expires: number } | null
  lastId: number
  /** Recent messages for devices that resume, ordered by id; `floor` is the newest id known to be gone. */
  log: Routed[]
  floor: number
  /** Offline queue, ordered by id. */
  queue: Routed[]
  queueExpires: number
  dropped: number
  /** device → the time it lapses unless refreshed */
  devices: Map<string, number>
  seen: number
  /** Online for `user_status_<id>`, and when the grace period ends (0: not in one). */
  on: boolean
  off: number
}

/** Most addresses whose authentication attempts are counted at once. */
const MAX_ADDRESSES = 100_000

/** One instance, everything in process memory: the same contract as the Redis store, minus sharing. */
export class MemoryStore implements Store {
  #settings: StoreSettings
  #users = new Map<string, UserState>()
  /** Authentication attempts per address, in a window that ends at `end`. */
  #attempts = new Map<string, { failures: number, inFlight: number, end: number }>()
  /** user → [revoked at, forgotten at] (ms) */
  #revoked = new Map<string, [number, number]>()
  #listeningUsers = new Set<string>()
  #listeningChannels = new Set<string>()
  #handlers: BusHandlers | null = null
  /** `<user>|<idempotency key>` → the first send's result. */
  #sent = new OnceRecord<SendResult>()
  readonly channels: MemoryChannels

  /** Server events, decided with the transitions as the Redis scripts do (lib/events). */
  #events: EventSink | null = null
  get events (): EventSink | null { return this.#events }
  set events (sink: EventSink | null) {
    this.#events = sink
    this.channels.events = sink
  }

  constructor (settings: StoreSettings) {
    this.#settings = settings
    this.channels = new MemoryChannels(settings.messageTail, (channel, frame, sender) => {
      if (this.#listeningChannels.has(channel)) this.#handlers?.channel(channel, Buffer.from(frame), sender)
    })
  }

  async start (handlers: BusHandlers): Promise<void> {
    this.#handlers = handlers
  }

  #user (userId: string): UserState {
    let user = this.#users.get(userId)
    if (user === undefined) {
      user = { auth: null, lastId: 0, log: [], floor: 0, queue: [], queueExpires: 0, dropped: 0, devices: new Map(), seen: 0, on: false, off: 0 }
      this.#users.set(userId, user)
    }
    return user
  }

  /** Applies expiry the way Redis TTLs would, and forgets users with nothing left. */
  #expire (userId: string, user: UserState, now: number): void {
    if (user.auth !== null && user.auth.expires <= now) user.auth = null
    if (user.queue.length > 0 && user.queueExpires <= now) user.queue = []
    this.#trimLog(user, now)
    for (const [device, expires] of user.devices) {
      if (expires <= now) user.devices.delete(device)
    }
    if (user.seen !== 0 && user.seen + this.#settings.lastSeenTtl <= now) user.seen = 0
    if (user.auth === null && user.queue.length === 0 && user.log.length === 0 && user.devices.size === 0 && user.seen === 0 && user.dropped === 0 && !user.on) {
      this.#users.delete(userId)
    }
  }

  #get (userId: string): UserState | undefined {
    const user = this.#users.get(userId)
    if (user !== undefined) this.#expire(userId, user, Date.now())
    return this.#users.get(userId)
  }

  async setAuth (userId: string, digest: string, ttl: number | undefined): Promise<void> {
    this.#user(userId).auth = { digest, expires: ttl === undefined ? Infinity : Date.now() + ttl }
  }

  async getAuth (userId: string): Promise<string | null> {
    return this.#get(userId)?.auth?.digest ?? null
  }

  async revokeAuth (userId: string): Promise<void> {
    const user = this.#get(userId)
    if (user !== undefined) {
      user.auth = null
      user.devices.clear()
    }
    const now = Date.now()
    const ttl = this.#settings.revocationTtl ?? 0
    if (ttl > 0) this.#revoked.set(userId, [now, now + ttl])
    if (this.#listeningUsers.has(userId)) this.#handlers?.control(userId, { kind: 'revoke' })
  }

  async authAttempt (address: string, max: number, window: number): Promise<[boolean, number, number]> {
    const now = Date.now()
    let entry = this.#attempts.get(address)
    if (entry === undefined || entry.end <= now) {
      // A flood of distinct addresses evicts the oldest: memory stays bounded.
      if (entry === undefined && this.#attempts.size >= MAX_ADDRESSES) this.#attempts.delete(this.#attempts.keys().next().value as string)
      this.#attempts.set(address, entry = { failures: 0, inFlight: 0, end: now + window })
    }
    const admitted = entry.failures + entry.inFlight < max
    if (admitted) entry.inFlight++
    return [admitted, entry.failures, entry.end - now]
  }

  async authSettle (address: string, failed: boolean): Promise<[number, number]> {
    const entry = this.#attempts.get(address)
    const now = Date.now()
    if (entry === undefined || entry.end <= now) return [0, 0]
    if (entry.inFlight > 0) entry.inFlight--
    if (failed) entry.failures++
    return [entry.failures, entry.end - now]
  }

  async revokedAt (userId: string): Promise<number | null> {
    return this.#revokedAt(userId)
  }

  #revokedAt (userId: string): number | null {
    const revoked = this.#revoked.get(userId)
    if (revoked === undefined) return null
    if (revoked[1] > Date.now()) return revoked[0]
    this.#revoked.delete(userId)
    return null
  }

  async sendToUser (userId: string, head: string, once?: Once): Promise<SendResult> {
    if (once === undefined) return this.#send(userId, head)
    const key = `${userId}|${once.key}`
    const now = Date.now()
    const done = this.#sent.get(key, now)
    if (done !== undefined) return done
    const result = this.#send(userId, head)
    this.#sent.set(key, result, now + once.ttl)
    return result
  }

  async sendToUsers (userIds: string[], head: string): Promise<SendResult[]> {
    return userIds.map((userId) => this.#send(userId, head))
  }

  #send (userId: string, head: string): SendResult {
    const now = Date.now()
    const user = this.#get(userId) ?? this.#user(userId)
    const last = user.lastId
    user.lastId = nextId(last, now)
    if (last === 0) user.floor = user.lastId - 1
    const message = { id: user.lastId, frame: Buffer.from(head + user.lastId + this.#settings.messageTail) }
    const id = String(user.lastId)
    if (this.#settings.resume.size > 0) {
      user.log.push(message)
      this.#trimLog(user, now)
    }
    if (this.#listeningUsers.has(userId)) {
      this.#handlers?.user(userId, message)
      return { id, queued: false }
    }
    if (this.#settings.queue.maxMessages === 0) return { id, queued: false }
    this.#enqueue(userId, user, [message], now)
    return { id, queued: true }
  }

  #enqueue (userId: string, user: UserState, messages: Routed[], now: number): void {
    user.queue.push(...messages)
    user.queue.sort((a, b) => a.id - b.id)
    const over = user.queue.length - this.#settings.queue.maxMessages
    if (over > 0) {
      user.queue.splice(0, over)
      user.dropped += over
      this.#events?.({ type: 'dropped', key: `u:${userId}`, at: now, userId, count: over })
    }
    user.queueExpires = now + this.#settings.queue.ttl
  }

  /** Drops log entries past the size or older than the ttl, and raises the floor to the newest dropped. */
  #trimLog (user: UserState, now: number): void {
    const cutoff = (now - this.#settings.resume.ttl) * 1000
    let drop = Math.max(0, user.log.length - this.#settings.resume.size)
    while (drop < user.log.length && (user.log[drop] as Routed).id <= cutoff) drop++
    if (drop === 0) return
    user.floor = Math.max(user.floor, (user.log[drop - 1] as Routed).id)
    user.log.splice(0, drop)
  }

  async requeue (userId: string, messages: Routed[]): Promise<void> {
    if (this.#settings.queue.maxMessages > 0) this.#enqueue(userId, this.#user(userId), messages, Date.now())
  }

  async listenUser (userId: string): Promise<void> { this.#listeningUsers.add(userId) }
  async unlistenUser (userId: string): Promise<void> { this.#listeningUsers.delete(userId) }
  async listenChannel (channel: string): Promise<void> { this.#listeningChannels.add(channel) }
  async unlistenChannel (channel: string): Promise<void> { this.#listeningChannels.delete(channel) }

  async attach (userId: string, device: string, proof: AuthProof, since: number | null): Promise<AttachResult> {
    const now = Date.now()
    if ('digest' in proof ? this.#get(userId)?.auth?.digest !== proof.digest : proof.issuedAt < (this.#revokedAt(userId) ?? -Infinity)) {
      return { ok: false, reason: 'revoked' }
    }
    const user = this.#get(userId) ?? this.#user(userId)
    while (user.devices.size >= this.#settings.maxDevices) {
      if (!this.#settings.evictOldest) return { ok: false, reason: 'limit' }
      const oldest = [...user.devices.keys()].sort((a, b) => deviceAge(a) - deviceAge(b))[0] as string
      user.devices.delete(oldest)
      this.#handlers?.control(userId, { kind: 'evict', device: oldest })
    }
    user.devices.set(device, now + this.#settings.presenceTtl)
    user.seen = now
    this.#online(userId, user)
    const { queue, dropped } = user
    user.queue = []
    user.dropped = 0
    const resumed = since === null ? { recovered: null, missed: [] } : this.#resume(user, since)
    if (user.lastId === 0) user.lastId = user.floor = now * 1000
    // Messages are routed synchronously here: every one sent before the attach is through already.
    if (this.#listeningUsers.has(userId)) this.#handlers?.control(userId, { kind: 'synced', device })
    return { ok: true, queued: queue, dropped, ...resumed, synced: user.lastId }
  }

  /** As in Redis (lib/store/redis/lua/lib/resume.lua); memory never loses data under a connected socket. */
  #resume (user: UserState, since: number): { recovered: boolean, missed: Routed[] } {
    // An empty log (expired, or resume off) recovers only a device that saw the last id.
    const recovered = user.lastId !== 0 && since >= (user.log.length === 0 ? user.lastId : user.floor)
    return { recovered, missed: recovered ? user.log.filter((m) => m.id > since) : [] }
  }

  async catchUp (userId: string, since: number): Promise<CatchUp> {
    const user = this.#user(userId)
    const queued = user.queue
    user.queue = []
    return { queued, ...this.#resume(user, since) }
  }

  async detach (userId: string, device: string): Promise<number | null> {
    const user = this.#users.get(userId)
    if (user === undefined) return null
    const now = Date.now()
    const left = user.devices.delete(device)
    user.seen = now
    return this.#settle(userId, user, now, left ? now + this.#settings.presenceGrace : now)
  }

  async refresh (devices: Map<string, string[]>): Promise<void> {
    const now = Date.now()
    for (const [userId, ids] of devices) {
      const user = this.#user(userId)
      for (const device of ids) user.devices.set(device, now + this.#settings.presenceTtl)
      user.seen = now
      this.#online(userId, user)
    }
  }

  /** The user's status, as the Redis scripts keep it (lib/store/redis/lua/lib/status.lua). */
  #online (userId: string, user: UserState): void {
    user.off = 0
    if (user.on) return
    user.on = true
    this.#handlers?.status(userId, true)
    this.#events?.({ type: 'online', key: `u:${userId}`, at: Date.now(), userId })
  }

  #settle (userId: string, user: UserState, now: number, due: number): number | null {
    const fresh = freshAfter(now, this.#settings)
    let counted = 0
    for (const [device, lapse] of user.devices) {
      if (lapse <= now) user.devices.delete(device)
      else if (lapse > fresh) counted++
    }
    if (counted > 0 || !user.on) return null
    if (user.off === 0) user.off = due
    if (user.off > now) return user.off
    user.on = false
    user.off = 0
    this.#handlers?.status(userId, false)
    this.#events?.({ type: 'offline', key: `u:${userId}`, at: now, userId, lastSeen: user.seen === 0 ? null : user.seen })
    return null
  }

  /** The sweep that bounds memory for users who never come back (and ends grace periods nobody timed). */
  async maintain (): Promise<void> {
    const now = Date.now()
    this.#sent.sweep(now)
    for (const [userId, user] of this.#users) {
      this.#settle(userId, user, now, now)
      this.#expire(userId, user, now)
    }
    for (const [address, { end }] of this.#attempts) if (end <= now) this.#attempts.delete(address)
    for (const [userId, [, forgotten]] of this.#revoked) if (forgotten <= now) this.#revoked.delete(userId)
  }

  async status (userId: string): Promise<UserStatus> {
    const user = this.#get(userId)
    if (user === undefined) return { devices: 0, seen: null, online: false, due: null }
    const due = this.#settle(userId, user, Date.now(), Date.now())
    return { devices: user.devices.size, seen: user.seen === 0 ? null : user.seen, online: user.on, due }
  }

  async ping (): Promise<void> {}

  async inspect (userId: string): Promise<{ devices: string[], queued: number }> {
    const user = this.#get(userId)
    return { devices: [...user?.devices.keys() ?? []], queued: user?.queue.length ?? 0 }
  }

  // One instance: its own report is all there is.
  async report (): Promise<void> {}
  async reports (): Promise<string[]> { return [] }

  async close (): Promise<void> {
    this.#handlers = null
    this.#listeningUsers.clear()
    this.#listeningChannels.clear()
  }
}
