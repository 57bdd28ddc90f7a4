import type { Socket } from 'node:net'
import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket, RawData } from 'ws'
import { matches } from '../auth/hash.ts'
import type { AuthLimits } from '../auth/limits.ts'
import type { Vouched } from '../auth/hook.ts'
import { TokenRejected } from '../auth/jwt.ts'
import type { Claims, JwtSettings } from '../auth/jwt.ts'
import { TokenSession } from '../auth/session.ts'
import { CLOSE } from '../protocol/close-codes.ts'
import { errorFrame, FrameError, parseFrame, reply } from '../protocol/frames.ts'
import { payloadOf } from '../protocol/wire.ts'
import type { ClientFrame, Ref } from '../protocol/frames.ts'
import type { Hub } from '../routing/hub.ts'
import type { AuthProof, Routed, Store } from '../store/types.ts'
import type { Settings } from '../options.ts'
import type { Channels } from '../channels/index.ts'
import { SOCKET_SLICES } from './heartbeat.ts'

export interface ConnectionContext {
  settings: Settings
  store: Store
  hub: Hub
  log: FastifyBaseLogger
  limits: AuthLimits | null
  /** Token verification (the `jwt` option), or null when tokens are not accepted. */
  jwt: JwtSettings | null
  channels: Channels
  /** A new device id, `<attach ms>.<instance id>.<n>`. */
  nextDevice (): string
  /** Called once when the socket has closed. */
  closed (conn: Connection): void
  /**
   * Whether routed messages are written to the socket as prebuilt frames (protocol/wire.ts); not when the
   * WebSocket server may compress, as ws then queues its own writes behind the compression.
   */
  prebuilt: boolean
}

let nextSlice = 0
const OPEN = 1
const CLOSED = 3
const TEXT = { binary: false }
/** Frames a client may send ahead while one of its frames waits on the store; memory stays bounded. */
const MAX_DEFERRED = 128
/** How long a client cut for being slow may go without reading before its socket is destroyed. */
const SLOW_CLOSE_GRACE = 1000

/** syncing: authenticating and sending stored messages; live ones wait in the inbox meanwhile. */
type State = 'new' | 'syncing' | 'ready' | 'closed'

/**
 * One client socket: authentication, its frames, and the messages routed to it. Listeners are attached in
 * the constructor, synchronously, so no frame or close is missed; state is re-checked after every await.
 */
export class Connection {
  userId: string | null = null
  /** Set once the device is recorded in the store (authenticated users only). */
  device: string | null = null
  /** The heartbeat slice that pings this socket. */
  readonly slice = nextSlice++ % SOCKET_SLICES
  /** Cleared by each heartbeat's ping, set by the pong. */
  alive = true
  #ws: WebSocket
  #ctx: ConnectionContext
  /** The client's address, for the failed-authentication limit. */
  #address: string
  #state: State = 'new'
  /** The user the upgrade hook vouched for, if it did. */
  #vouched: Vouched | null
  /** Set when the socket logged in with a token: its claims, expiry and refresh. */
  #token: TokenSession | undefined
  /** Dropped once authenticated: an idle socket keeps no timer. */
  #authTimer: NodeJS.Timeout | undefined
  // Created when first needed (most sockets never need them): memory per idle socket is what scales.
  /** Live messages that arrive while syncing; merged by id with the stored ones. */
  #inbox: Routed[] | undefined
  /** Frames that arrive while an earlier one waits on the store. */
  #deferred: Array<[RawData, boolean]> | undefined
  #subs: Set<string> | undefined
  #busy = false
  /** The newest private message id this socket has (sent, or known to precede what it will be sent). */
  #lastId = 0
  /** Private messages wait in the inbox while a routing gap is caught up (see hold). */
  #holding = false

  constructor (ws: WebSocket, ctx: ConnectionContext, address: string, vouched: Vouched | null = null) {
    this.#ws = ws
    this.#ctx = ctx
    this.#address = address
    this.#vouched = vouched
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary))
    ws.on('pong', () => { this.alive = true })
    ws.on('close', () => this.#onClose())
    ws.on('error', terminate)
    this.#authTimer = setTimeout(() => this.close(CLOSE.AUTH_TIMEOUT, 'no auth frame in time'), ctx.settings.authTimeout)
  }

  get closed (): boolean { return this.#state === 'closed' }
  /** The verified token's claims, for the app's hooks; null unless the socket logged in with a token. */
  get claims (): Claims | null { return this.#token?.claims ?? null }
  /** The id up to which this socket has every private message: where a catch-up starts. */
  get synced (): number { return this.#lastId }

  /**
   * Offers a routed private message (`wire`: its frame, from textFrame); true when this socket took it
   * (or already had it).
   */
  offer (message: Routed, wire: Buffer): boolean {
    if (this.#state === 'syncing' || (this.#holding && this.#state === 'ready')) {
      (this.#inbox ??= []).push(message)
      return true
    }
    if (!this.canTake()) return false
    if (message.id <= this.#lastId) return true
    if (!this.#write(wire)) return false
    this.#lastId = message.id
    return true
  }

  /** Whether a message routed now would reach this socket. */
  canTake (): boolean {
    return this.#state === 'syncing' || (this.#state === 'ready' && this.#ws.readyState === OPEN)
  }

  /** Holds live messages in the inbox while a routing gap is caught up (Hub.resync); false if not ready. */
  hold (): boolean {
    if (this.#state !== 'ready' || this.#holding) return false
    this.#holding = true
    return true
  }

  /** Sends the catch-up merged by id with what was held, then delivers live again; returns what could not be sent. */
  async release (stored: Routed[]): Promise<Routed[]> {
    if (this.#state !== 'ready') {
      this.#holding = false
      return this.takeInbox()
    }
    const unsent = await this.#flush(stored.concat(this.takeInbox()))
    this.#holding = false
    return unsent
  }

  takeInbox (): Routed[] {
    const held = this.#inbox ?? []
    this.#inbox = undefined
    return held
  }

  /** Sends a channel message's frame (from textFrame). */
  sendFrame (wire: Buffer): void {
    if (this.#state === 'ready' && this.#ws.readyState === OPEN) this.#write(wire)
  }

  /** Writes a frame built by textFrame unless the client is too slow: then it is cut, and the frame is not taken. */
  #write (wire: Buffer): boolean {
    if (this.#ws.bufferedAmount + wire.length > this.#ctx.settings.maxBufferedBytes) {
      this.#ctx.log.info({ userId: this.userId, buffered: this.#ws.bufferedAmount }, 'comet: closing a client that reads too slowly')
      this.#cutSlow()
      return false
    }
    // Without compression ws writes every frame at once, in call order, so ours stay in sequence with its own.
    if (this.#ctx.prebuilt) rawSocket(this.#ws).write(wire)
    else this.#ws.send(payloadOf(wire), TEXT)
    return true
  }

  /**
   * Closes with 4413. The close frame waits behind what the client has not read: a client that reads
   * nothing will not get it, so the socket is cut once a grace passes with no byte written; one still
   * reading (its backlog goes out) is given the time to reach the close frame and learn why.
   */
  #cutSlow (): void {
    this.close(CLOSE.TOO_SLOW, 'too slow')
    const raw = rawSocket(this.#ws)
    let written = -1
    const check = (): void => {
      if (this.#ws.readyState === CLOSED) return
      if (raw.bytesWritten === written) return this.#ws.terminate()
      written = raw.bytesWritten
      setTimeout(check, SLOW_CLOSE_GRACE).unref()
    }
    check()
  }

  /** Heartbeat: cut a socket that did not answer the previous ping, ping the others. */
  heartbeat (): void {
    if (!this.alive) return this.#ws.terminate()
    this.alive = false
    this.#ws.ping()
  }

  terminate (): void { this.#ws.terminate() }

  close (code: number, reason: string): void {
    if (this.#ws.readyState === OPEN || this.#ws.readyState === 0) this.#ws.close(code, reason)
  }

  #send (text: string): void {
    if (this.#ws.readyState === OPEN) this.#ws.send(text)
  }

  #onMessage (data: RawData, isBinary: boolean): void {
    if (this.#ws.readyState !== OPEN) return
    // Frames are handled one at a time, in order: while one waits on the store, the next ones wait too.
    if (this.#busy) {
      this.#deferred ??= []
      if (this.#deferred.length >= MAX_DEFERRED) return this.close(CLOSE.POLICY, 'too many frames in flight')
      this.#deferred.push([data, isBinary])
      return
    }
    if (isBinary) return this.#send(errorFrame('bad_json', 'frames must be JSON text'))
    // When the app registered @fastify/websocket itself, its maxPayload may be larger than ours.
    const size = Array.isArray(data) ? data.reduce((n, b) => n + b.length, 0) : data.byteLength
    if (size > this.#ctx.settings.maxPayload) return this.close(CLOSE.TOO_BIG, 'frame too large')
    let frame: ClientFrame
    try {
      frame = parseFrame(data.toString())
    } catch (err) {
      const e = err as FrameError
      return this.#send(errorFrame(e.code, e.message, e.ref))
    }
    this.#handle(frame)
  }

  /** Runs an async frame handler; frames that arrive meanwhile are handled after it, in order. */
  #exclusive (work: Promise<void>): void {
    this.#busy = true
    work.finally(() => {
      this.#busy = false
      while (!this.#busy && this.#deferred !== undefined && this.#deferred.length > 0 && this.#ws.readyState === OPEN) {
        const [data, isBinary] = this.#deferred.shift() as [RawData, boolean]
        this.#onMessage(data, isBinary)
      }
      if (this.#deferred?.length === 0) this.#deferred = undefined
    })
  }

  #handle (frame: ClientFrame): void {
    if (this.#state === 'new' && frame.type !== 'auth') {
      return this.#send(errorFrame('auth_required', 'the first frame must be auth', frame.ref))
    }
    switch (frame.type) {
      case 'auth':
        if (this.#state !== 'new') return this.#send(errorFrame('already_authenticated', 'this connection is already authenticated', frame.ref))
        return this.#exclusive(this.#authenticate(frame).catch((err: unknown) => this.#unavailable(err, frame.ref)))
      case 'subscribe':
        return this.#exclusive(this.#subscribe(frame.channel, frame.ref).catch((err: unknown) => {
          this.#ctx.log.warn({ err, channel: frame.channel }, 'comet: subscribe failed')
          this.#send(errorFrame('unavailable', 'could not subscribe now; retry later', frame.ref))
        }))
      case 'unsubscribe':
        if (this.#subs?.delete(frame.channel) === true) {
          this.#ctx.hub.unsubscribe(this, frame.channel)
          this.#ctx.channels.unsubscribed(this, frame.channel)
        }
        return this.#send(reply('unsubscribed', { channel: frame.channel }, frame.ref))
      case 'ping':
        return this.#send(reply('pong', {}, frame.ref))
      case 'refresh':
        return this.#exclusive(this.#refresh(frame.token, frame.ref))
      case 'publish':
      case 'members':
      case 'history':
        return this.#exclusive(this.#ctx.channels.handle(this, frame, (text) => this.#send(text)))
    }
  }

  async #authenticate ({ userId, hash, token, since, ref }: ClientFrame & { type: 'auth' }): Promise<void> {
    const { store, hub, log } = this.#ctx
    let proof: AuthProof
    if (this.#vouched !== null) {
      this.#state = 'syncing'
      userId = this.#vouched.userId
      proof = { issuedAt: this.#vouched.at }
    } else if (token !== null) {
      const jwt = this.#ctx.jwt
      if (jwt === null) return this.close(CLOSE.AUTH_FAILED, 'tokens are not accepted here')
      this.#state = 'syncing'
      try {
        const verified = await jwt.verify(token)
        if (this.closed) return
        userId = verified.userId
        proof = { issuedAt: verified.issuedAt }
        this.#token = new TokenSession(verified, () => this.close(CLOSE.AUTH_FAILED, 'token expired'))
      } catch (err) {
        if (!(err instanceof TokenRejected)) throw err
        return await this.#failed(err.sub, err.expired ? 'token expired' : 'authentication failed')
      }
    } else {
      if (userId === null || hash === null) {
        this.#becomeReady(reply('ready', { userId: null }, ref))
        return
      }
      this.#state = 'syncing'
      const digest = await store.getAuth(userId)
      if (this.closed) return
      if (digest === null || !matches(hash, digest)) return await this.#failed(userId, 'authentication failed')
      proof = { digest }
    }
    // Listen first, then read the queue: a message sent in between is either queued or routed here.
    this.userId = userId
    await hub.joinUser(this, userId)
    if (this.closed) return
    const device = this.#ctx.nextDevice()
    const result = await store.attach(userId, device, proof, since)
    if (!result.ok) {
      if (result.reason === 'limit') log.info({ userId }, 'comet: device limit reached')
      // A token issued before the user's revocation is a failed login like a wrong hash.
      else if (this.#token !== undefined) return await this.#failed(userId, 'authentication failed')
      return this.close(result.reason === 'limit' ? CLOSE.DEVICE_LIMIT : CLOSE.AUTH_FAILED,
        result.reason === 'limit' ? 'too many devices' : 'authentication failed')
    }
    if (this.closed) {
      // Closed while the queue was being taken: give it back, and the device slot too. Missed messages
      // stay in the resume log, so they need no giving back.
      this.#ctx.channels.presence.deviceLeft(userId, device)
      if (result.queued.length > 0) hub.requeue(userId, result.queued)
      return
    }
    this.device = device
    if (result.dropped > 0) log.warn({ userId, dropped: result.dropped }, 'comet: offline queue overflowed; oldest messages dropped')
    this.#lastId = since ?? 0
    const stored = new Set<number>()
    for (const m of result.queued.concat(result.missed)) if (m.id > this.#lastId) stored.add(m.id)
    // `last`: once the stored messages (all at or below it) have arrived, the device has everything up to
    // it, even if it got no message at all: a reconnect passes it as `since`. So a live message at or
    // below it that is not stored is not sent either: exactly `queued` messages come at or below `last`.
    const recovered = result.recovered === null ? {} : { recovered: result.recovered }
    const ready = { userId, queued: stored.size, dropped: result.dropped, ...recovered, last: String(result.synced) }
    this.#stopAuthTimer()
    this.#send(reply('ready', ready, ref))
    const live = this.takeInbox().filter((m) => m.id > result.synced)
    const unsent = await this.#flush(result.queued.concat(result.missed, live), result.synced)
    if (unsent.length > 0) {
      hub.requeue(userId, unsent)
      return
    }
    this.#state = 'ready'
    log.debug({ userId, device }, 'comet: device connected')
  }

  /** A failed login: logged, counted against the limits, answered late (per user id), then closed with 4401. */
  async #failed (userId: string, reason: string): Promise<void> {
    this.#ctx.log.info({ userId, address: this.#address }, 'comet: authentication failed')
    // The socket handles no other frame meanwhile.
    const delay = this.#ctx.limits?.failed(this.#address, userId) ?? 0
    if (delay > 0) await new Promise((resolve) => setTimeout(resolve, delay))
    this.close(CLOSE.AUTH_FAILED, reason)
  }

  async #refresh (token: string, ref: Ref | undefined): Promise<void> {
    const { jwt, store } = this.#ctx
    if (this.#token === undefined || jwt === null) return this.#send(errorFrame('invalid_token', 'this connection did not log in with a token', ref))
    const result = await this.#token.refresh(token, jwt, async (userId) => await store.revokedAt(userId))
    if (result.ok) this.#send(reply('refreshed', { exp: result.exp }, ref))
    else this.#send(errorFrame(result.code, result.message, ref))
  }

  /**
   * Sends stored messages (queued, missed) merged by id with live ones that arrive meanwhile, paced by
   * the socket: a backlog is never cut for being large, only a client that does not read. Ids at or
   * below the last sent (so up to `since`), and after the backlog up to `synced`, are skipped. Returns what
   * could not be sent if the socket closed.
   */
  async #flush (backlog: Routed[], synced = 0): Promise<Routed[]> {
    const cap = this.#ctx.settings.maxBufferedBytes
    let pending = backlog
    do {
      pending.sort((a, b) => a.id - b.id)
      for (let i = 0; i < pending.length; i++) {
        const message = pending[i] as Routed
        if (message.id <= this.#lastId) continue
        if (this.#ws.readyState !== OPEN) return pending.slice(i)
        if (this.#ws.bufferedAmount + message.frame.length <= cap) {
          this.#ws.send(message.frame, TEXT)
        } else {
          const failed = await new Promise((resolve) => this.#ws.send(message.frame, TEXT, resolve))
          if (failed !== undefined && failed !== null) return pending.slice(i)
        }
        this.#lastId = message.id
      }
      if (synced > this.#lastId) this.#lastId = synced
      pending = this.takeInbox()
    } while (pending.length > 0)
    return []
  }

  #stopAuthTimer (): void {
    clearTimeout(this.#authTimer)
    this.#authTimer = undefined
  }

  #becomeReady (readyFrame: string): void {
    this.#stopAuthTimer()
    this.#state = 'ready'
    this.#send(readyFrame)
  }

  async #subscribe (channel: string, ref: Ref | undefined): Promise<void> {
    const subs = this.#subs ??= new Set()
    if (!subs.has(channel)) {
      if (subs.size >= this.#ctx.settings.maxSubscriptions) {
        return this.#send(errorFrame('too_many_subscriptions', `at most ${this.#ctx.settings.maxSubscriptions} subscriptions per connection`, ref))
      }
      if (!(await this.#ctx.channels.canSubscribe(this, channel))) {
        return this.#send(errorFrame('forbidden', `not allowed to subscribe to ${channel}`, ref))
      }
      if (this.closed) return
      subs.add(channel)
      try {
        await this.#ctx.hub.subscribe(this, channel)
      } catch (err) {
        subs.delete(channel)
        throw err
      }
      if (this.closed) return this.#ctx.hub.unsubscribe(this, channel)
      await this.#ctx.channels.subscribed(this, channel)
    }
    this.#send(reply('subscribed', { channel }, ref))
  }

  #unavailable (err: unknown, ref: Ref | undefined): void {
    this.#ctx.log.warn({ err, userId: this.userId }, 'comet: store unavailable during authentication')
    this.#send(errorFrame('unavailable', 'the server cannot authenticate now; retry later', ref))
    this.close(CLOSE.TRY_AGAIN_LATER, 'try again later')
  }

  #onClose (): void {
    if (this.closed) return
    this.#state = 'closed'
    this.#stopAuthTimer()
    this.#token?.stop()
    const { hub } = this.#ctx
    const subs = this.#subs ?? []
    this.#subs = undefined
    this.#ctx.channels.closed(this, subs)
    for (const channel of subs) hub.unsubscribe(this, channel)
    if (this.userId !== null) hub.leaveUser(this, this.userId)
    if (this.device !== null && this.userId !== null) this.#ctx.channels.presence.deviceLeft(this.userId, this.device)
    this.#ctx.closed(this)
  }
}

/** A socket that errs is cut; one function for all sockets, not a closure each. */
function terminate (this: WebSocket): void {
  this.terminate()
}

/** The TCP socket under a WebSocket (ws keeps it as `_socket` while open). */
function rawSocket (ws: WebSocket): Socket {
  return (ws as unknown as { _socket: Socket })._socket
}
