import type { FastifyBaseLogger } from 'fastify'
import type { CatchUp, Control, Routed, Store } from '../store/types.ts'
import { CLOSE } from '../protocol/close-codes.ts'
import { textFrame } from '../protocol/wire.ts'
import { sliceOf, Slices } from './slices.ts'
import { written } from './device-stream.ts'
import type { DeviceStream } from './device-stream.ts'

const CATCH_UP_ATTEMPTS = 5

interface Route<Members> {
  conns: Members
  /** Resolves once the store routes this user's / channel's traffic here. */
  listening: Promise<void>
}

/** What the hub needs of a channel subscriber. */
export interface ChannelMember {
  readonly userId: string | null
  /** Writes a channel message's frame (from textFrame). */
  sendFrame (wire: Buffer): void
}

/**
 * A user's device streams on this instance: a few at most, so an array (a Set costs more memory per
 * user, and memory per idle connection is what scales). A channel may have thousands: a Set.
 */
type UserRoute = Route<DeviceStream[]>
type ChannelRoute<C> = Route<Set<C>>

const LISTENING = Promise.resolve()

/**
 * This instance's routing table: which local sockets belong to which user and channel. The store brings
 * a message here only when this instance listens for its user or channel; the hub hands it to the sockets,
 * and puts back what no open socket could take.
 */
export class Hub<C extends ChannelMember = ChannelMember> {
  readonly users = new Map<string, UserRoute>()
  readonly channels = new Map<string, ChannelRoute<C>>()
  /** Store calls in flight that shutdown must wait for (detach, requeue). */
  readonly pending = new Set<Promise<unknown>>()
  /** User ids and channel names by heartbeat slice. */
  readonly #userSlices = new Slices<string>()
  readonly #channelSlices = new Slices<string>()
  #store: Store
  #log: FastifyBaseLogger

  constructor (store: Store, log: FastifyBaseLogger) {
    this.#store = store
    this.#log = log
  }

  /** Registers an authenticating socket; resolves when the user's messages are routed to this instance. */
  joinUser (conn: DeviceStream, userId: string): Promise<void> {
    const route = this.users.get(userId)
    if (route !== undefined) {
      route.conns.push(conn)
      conn.joined(route.conns)
      return route.listening
    }
    const listening = this.#store.listenUser(userId)
    // Sized for the one socket most users have here (an empty array grows to 17 slots on its first push).
    const fresh: UserRoute = { conns: [conn], listening }
    conn.joined(fresh.conns)
    // Once listening, the route drops its own promise (memory per idle user); a failure stays for joiners.
    listening.then(() => { fresh.listening = LISTENING }, () => {})
    this.users.set(userId, fresh)
    this.#userSlices.add(sliceOf(userId), userId)
    return listening
  }

  leaveUser (conn: DeviceStream, userId: string): void {
    const route = this.users.get(userId)
    const at = route?.conns.indexOf(conn) ?? -1
    if (route === undefined || at === -1) return
    route.conns.splice(at, 1)
    if (route.conns.length === 0) {
      this.users.delete(userId)
      this.#userSlices.delete(sliceOf(userId), userId)
      this.track(this.#store.unlistenUser(userId), 'unlisten user')
    }
    this.giveBack(userId, conn.close())
  }

  /**
   * A private message routed to this instance. Ready sockets take it first, so a syncing one knows whether
   * it has reached a device here; what no socket took or holds must not vanish.
   */
  deliverUser (userId: string, message: Routed): void {
    const route = this.users.get(userId)
    if (route !== undefined) {
      const wire = textFrame(message.frame)
      let taken = false
      let held = false
      for (const conn of route.conns) if (conn.take(message, wire)) taken = true
      for (const conn of route.conns) if (conn.hold(message, taken)) held = true
      if (taken || held) return
    }
    this.requeue(userId, [message])
  }

  /**
   * Messages a closed socket owed. Those another socket of the user holds are its to write (or give back
   * in turn), and those sent after another one's attach are that one's; the rest go to a socket of the user
   * still syncing, with its queue (it may be about to receive their live copies, which it must not write
   * twice), or else back to the queue.
   */
  giveBack (userId: string, messages: Routed[]): void {
    const others = this.users.get(userId)?.conns ?? []
    const owed = messages.filter((m) => !others.some((conn) => conn.holds(m.id) || conn.covers(m.id)))
    if (owed.length === 0 || others.some((conn) => conn.adopt(owed))) return
    this.requeue(userId, owed)
  }

  control (userId: string, control: Control): void {
    const route = this.users.get(userId)
    if (route === undefined) return
    for (const conn of [...route.conns]) {
      if (control.kind === 'synced') conn.marked(control.device)
      else if (control.kind === 'revoke') conn.sink.close(CLOSE.AUTH_FAILED, 'revoked')
      else if (conn.sink.device === control.device) conn.sink.close(CLOSE.REPLACED, 'replaced by a newer device')
    }
  }

  async subscribe (conn: C, channel: string): Promise<void> {
    let route = this.channels.get(channel)
    if (route === undefined) {
      const listening = this.#store.listenChannel(channel)
      route = { conns: new Set(), listening }
      this.channels.set(channel, route)
      this.#channelSlices.add(sliceOf(channel), channel)
      listening.catch(() => { if (this.channels.get(channel)?.listening === listening) this.#dropChannel(channel) })
    }
    route.conns.add(conn)
    try {
      await route.listening
    } catch (err) {
      route.conns.delete(conn)
      throw err
    }
  }

  unsubscribe (conn: C, channel: string): void {
    const route = this.channels.get(channel)
    if (route === undefined || !route.conns.delete(conn)) return
    if (route.conns.size === 0) {
      this.#dropChannel(channel)
      this.track(this.#store.unlistenChannel(channel), 'unlisten channel')
    }
  }

  #dropChannel (channel: string): void {
    this.channels.delete(channel)
    this.#channelSlices.delete(sliceOf(channel), channel)
  }

  /** `except`: the local connection that published the message, which does not get its own copy. */
  deliverChannel (channel: string, frame: Buffer, except?: ChannelMember): void {
    const route = this.channels.get(channel)
    if (route === undefined) return
    const wire = textFrame(frame)
    for (const conn of route.conns) if (conn !== except) conn.sendFrame(wire)
  }

  /**
   * After a gap in routing, every local user takes what was queued for them and what their sockets
   * missed. The sockets hold live messages from the moment routing is being restored (a live message
   * newer than a missed one must not overtake it, or the missed one would be skipped as already seen),
   * and send both merged by id once `ready` and the catch-up are done. A socket that cannot get all it
   * missed is closed with 1012 so its client resumes and learns `recovered: false`: never a silent gap.
   */
  resync (ready: Promise<void>): void {
    for (const [userId, route] of this.users) {
      // A syncing socket cannot tell what it missed: it fails or resumes (connection.ts).
      for (const conn of route.conns) conn.interrupted()
      const held = route.conns.filter((conn) => conn.startHolding())
      if (held.length === 0) continue
      const since = Math.min(...held.map((conn) => conn.synced))
      const release = async (queued: Routed[], missed: Routed[]): Promise<void> => {
        const unsent = await Promise.all(held.map(async (conn) => await conn.release(queued, missed)))
        // What one socket could not write may be what another is past; the queue the catch-up took goes
        // back unless a socket wrote it (each skips what it is past).
        const lost = unsent.flat().filter((m) => !held.some((conn) => conn.live && conn.synced >= m.id))
        this.giveBack(userId, [...new Map(lost.concat(queued.filter((m) => !written(m))).map((m) => [m.id, m])).values()])
      }
      this.track(this.#catchUp(ready, userId, since).then(async (caught) => {
        if (!caught.recovered) {
          for (const conn of held) conn.sink.close(CLOSE.SERVICE_RESTART, 'messages were missed; reconnect with since')
        }
        await release(caught.queued, caught.missed)
      }, async (err: unknown) => {
        // Routing came back but the store would not answer (a failover still settling): the sockets cannot
        // know what they missed, so they resume instead of carrying on with a silent gap.
        for (const conn of held) conn.sink.close(CLOSE.SERVICE_RESTART, 'could not catch up; reconnect with since')
        await release([], [])
        throw err
      }), 'catch up', { userId })
    }
  }

  /** The catch-up read, retried with backoff (about 3 s in all) while a failover settles. */
  async #catchUp (ready: Promise<void>, userId: string, since: number): Promise<CatchUp> {
    await ready
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.#store.catchUp(userId, since)
      } catch (err) {
        if (attempt === CATCH_UP_ATTEMPTS) throw err
        await new Promise((resolve) => setTimeout(resolve, 100 * 2 ** attempt))
      }
    }
  }

  requeue (userId: string, messages: Routed[]): void {
    this.track(this.#store.requeue(userId, messages), 'requeue', { userId, count: messages.length })
  }

  /** Devices this instance holds, per user (of one heartbeat slice): what the heartbeat keeps alive. */
  devices (slice: number): Map<string, string[]> {
    const all = new Map<string, string[]>()
    for (const userId of this.#userSlices.of(slice)) {
      const ids: string[] = []
      for (const conn of this.users.get(userId)!.conns) if (conn.sink.device !== null) ids.push(conn.sink.device)
      if (ids.length > 0) all.set(userId, ids)
    }
    return all
  }

  /** The channels with local subscribers, of one heartbeat slice. */
  channelsIn (slice: number): ReadonlySet<string> { return this.#channelSlices.of(slice) }

  /** Runs a store call in the background: logged if it fails, awaited by shutdown. */
  track (work: Promise<unknown>, what: string, context: Record<string, unknown> = {}): void {
    const p = work.catch((err: unknown) => this.#log.warn({ err, ...context }, `comet: ${what} failed`))
      .finally(() => this.pending.delete(p))
    this.pending.add(p)
  }
}
