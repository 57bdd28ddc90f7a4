import type { FastifyBaseLogger } from 'fastify'
import type { Subscriber } from './subscriber.ts'
import { errorFrame, ID_AND_TAIL, reply } from '../protocol/frames.ts'
import type { Hub } from '../routing/hub.ts'
import type { Store } from '../store/types.ts'
import * as validate from '../validate.ts'
import { clientMessageHead, historyReply, membersReply } from './frames.ts'
import type { ChannelFrame } from '../protocol/frames.ts'
import type { ChannelSettings } from './options.ts'
import { historyOf, kindOf, mayPublish, subscribeRule } from './policy.ts'
import { ChannelPresence } from './presence.ts'
import * as queries from './queries.ts'
import { TokenBucket } from './rate-limit.ts'
import type { LocalIds } from '../ids.ts'

export interface ChannelsContext {
  settings: ChannelSettings
  store: Store
  hub: Hub<Subscriber>
  log: FastifyBaseLogger
  /** Connection ids and the ids of client messages published without history. */
  ids: LocalIds
  heartbeatInterval: number
  maxPayload: number
}

/**
 * Everything channels add to a connection: who may subscribe, client publishing (policy, rate limit, hook,
 * sender stamp), presence, history and counts (the API's half is lib/api). Connections call in at a few points
 * (subscribe, unsubscribe, close, device attached) and hand over the channel frames.
 */
export class Channels {
  readonly presence: ChannelPresence
  #ctx: ChannelsContext
  #ids = new WeakMap<Subscriber, string>()
  /** Local connections that published, by id: the bus names the sender, and it gets no copy. */
  #senders = new Map<string, Subscriber>()
  #buckets = new WeakMap<Subscriber, TokenBucket>()

  constructor (ctx: ChannelsContext) {
    this.#ctx = ctx
    this.presence = new ChannelPresence(ctx.store, ctx.hub, ctx.log, ctx.settings.presenceGrace, ctx.heartbeatInterval, (conn) => this.id(conn))
  }

  /** A connection's id, unique across instances: its presence entry and its sender mark. */
  id (conn: Subscriber): string {
    let id = this.#ids.get(conn)
    if (id === undefined) {
      id = this.#ctx.ids.next()
      this.#ids.set(conn, id)
    }
    return id
  }

  /** The local connection that published a message, if it is on this instance. */
  sender (id: string | undefined): Subscriber | undefined {
    return id === undefined ? undefined : this.#senders.get(id)
  }

  async canSubscribe (conn: Subscriber, channel: string): Promise<boolean> {
    const kind = kindOf(channel)
    const hook = this.#ctx.settings.canSubscribe
    const rule = subscribeRule(channel, kind, conn.userId, hook !== undefined)
    if (rule !== 'ask' || hook === undefined) return rule !== 'deny'
    try {
      return await hook({ channel, kind, userId: conn.userId, claims: conn.claims }) === true
    } catch (err) {
      this.#ctx.log.warn({ err, channel, userId: conn.userId }, 'comet: canSubscribe threw; subscription refused')
      return false
    }
  }

  /** After the hub routes the channel here: the connection enters the channel's presence set. */
  async subscribed (conn: Subscriber, channel: string): Promise<void> {
    try {
      await Promise.all([
        this.presence.enter(this.presence.subs(channel), [conn.userId, this.id(conn)]),
        this.#ctx.store.channels.markActive([channel], 2 * this.#ctx.heartbeatInterval)
      ])
    } catch (err) {
      // The next heartbeat adds the entry (and sends the join) anyway.
      this.#ctx.log.warn({ err, channel }, 'comet: presence enter failed')
    }
  }

  unsubscribed (conn: Subscriber, channel: string): void {
    this.presence.exit(this.presence.subs(channel), [conn.userId, this.id(conn)])
  }

  /** The connection closed: it leaves every channel's presence. */
  closed (conn: Subscriber, channels: Iterable<string>): void {
    for (const channel of channels) this.unsubscribed(conn, channel)
    const id = this.#ids.get(conn)
    if (id !== undefined) this.#senders.delete(id)
  }

  /** A channel frame from a client. Never rejects: failures become `error` frames. */
  async handle (conn: Subscriber, frame: ChannelFrame, send: (text: string) => void): Promise<void> {
    try {
      if (frame.type === 'publish') return await this.#publish(conn, frame, send)
      if (!(await this.canSubscribe(conn, frame.channel))) {
        return send(errorFrame('forbidden', `not allowed to read ${frame.channel}`, frame.ref))
      }
      if (frame.type === 'members') {
        const page = membersReply(frame.channel, await queries.members(this.#ctx, frame.channel), frame.after, frame.ref, this.#ctx.maxPayload)
        return send(page ?? errorFrame('too_large', 'the members reply cannot fit in maxPayload with this ref', frame.ref))
      }
      if (historyOf(this.#ctx.settings, frame.channel) === undefined) {
        return send(errorFrame('no_history', `${frame.channel} keeps no history`, frame.ref))
      }
      const read = await this.#ctx.store.channels.history(frame.channel, frame.since)
      const page = historyReply(frame.channel, read.recovered, read.frames, frame.ref, this.#ctx.maxPayload)
      send(page ?? errorFrame('too_large', 'the history reply cannot fit in maxPayload with this ref', frame.ref))
    } catch (err) {
      this.#ctx.log.warn({ err, channel: frame.channel }, `comet: ${frame.type} failed`)
      send(errorFrame('unavailable', `could not ${frame.type} now; retry later`, frame.ref))
    }
  }

  async #publish (conn: Subscriber, frame: ChannelFrame & { type: 'publish' }, send: (text: string) => void): Promise<void> {
    const { settings, log } = this.#ctx
    const { channel, ref } = frame
    const kind = kindOf(channel)
    if (!mayPublish(kind, conn.userId)) {
      return send(errorFrame('forbidden', kind === 'webauth' ? 'only authorized users may publish here' : 'clients may publish only on web_* and webauth_* channels', ref))
    }
    let bucket = this.#buckets.get(conn)
    if (bucket === undefined) {
      bucket = new TokenBucket(settings.publishRate, settings.publishBurst)
      this.#buckets.set(conn, bucket)
    }
    if (!bucket.take()) return send(errorFrame('rate_limited', `at most ${settings.publishRate} messages per second`, ref))
    let { event, data } = frame
    if (settings.onClientPublish !== undefined) {
      let decision
      try {
        decision = await settings.onClientPublish({ channel, kind, event, data, userId: conn.userId, claims: conn.claims })
      } catch (err) {
        log.warn({ err, channel, userId: conn.userId }, 'comet: onClientPublish threw; message rejected')
        return send(errorFrame('rejected', 'the server rejected this message', ref))
      }
      if (decision === false) return send(errorFrame('rejected', 'the server rejected this message', ref))
      if (typeof decision === 'object' && decision !== null) {
        if (decision.event !== undefined) event = decision.event
        if ('data' in decision) data = decision.data
      }
    }
    if (conn.closed) return
    let head: string
    try {
      head = clientMessageHead(channel, validate.eventName(event), validate.json(data), conn.userId)
    } catch (err) {
      log.warn({ err, channel }, 'comet: onClientPublish returned an invalid event or data; message rejected')
      return send(errorFrame('rejected', 'the server rejected this message', ref))
    }
    if (Buffer.byteLength(head) + ID_AND_TAIL + queries.reserve(this.#ctx.settings, channel) > this.#ctx.maxPayload) return send(errorFrame('too_large', 'the message would exceed maxPayload', ref))
    const sender = this.id(conn)
    this.#senders.set(sender, conn)
    const id = await queries.publish(this.#ctx, channel, head, this.#ctx.ids.next(), sender)
    send(reply('published', { id }, ref))
  }

  /** One heartbeat slice of channel presence (lib/connections/heartbeat.ts). */
  beat (slice: number): Promise<void> { return this.presence.beat(slice) }
  stop (): void { this.presence.stop() }
}
