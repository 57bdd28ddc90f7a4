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
import { DeviceStream } from '../routing/device-stream.ts'
import type { DeviceSink } from '../routing/device-stream.ts'
import type { AuthProof, Store } from '../store/types.ts'
import type { Settings } from '../options.ts'
import type { Channels } from '../channels/index.ts'
import type { AuthResult, MessageKind, Metrics } from '../operations/metrics.ts'
import { SOCKET_SLICES } from './heartbeat.ts'

export interface ConnectionContext {
  settings: Settings
  store: Store
  hub: Hub<Connection>
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
  /** Counters for metrics and the admin page (lib/operations/metrics.ts); null when both are off. */
  metrics: Metrics | null
}

let nextSlice = 0
const OPEN = 1
const CLOSED = 3
const TEXT = { binary: false }
/** Frames a client may send ahead while one of its frames waits on the store; memory stays bounded. */
const MAX_DEFERRED = 128
/** How long a client cut for being slow may go without reading before its socket is destroyed. */
const SLOW_CLOSE_GRACE = 1000

/** syncing: authenticating and sending stored messages (its device stream holds live ones meanwhile). */
type State = 'new' | 'syncing' | 'ready' | 'closed'

/**
 * One client socket: authentication, its frames, and the messages routed to it. Listeners are attached in
 * the constructor, synchronously, so no frame or close is missed; state is re-checked after every await.
 */
export class Connection implements DeviceSink {
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
  /** The private messages of an authenticated user's socket. */
  #stream: DeviceStream | undefined
  /** Frames that arrive while an earlier one waits on the store. */
  #deferred: Array<[RawData, boolean]> | undefined
  #subs: Set<string> | undefined
  #busy = false

  constructor (ws: WebSocket, ctx: ConnectionContext, address: string, vouched: Vouched | null = null) {
    this.#ws = ws
    this.#ctx = ctx
    this.#address = address
    this.#vouched = vouched
    ws.on('message', (data, isBinary) => this.#onMessage(data, isBinary))
    ws.on('pong', () => { this.alive = true })
    ws.on('close', (code) => this.#onClose(code))
    ws.on('error', terminate)
    this.#authTimer = setTimeout(() => {
      this.#ctx.metrics?.auth('timeout', this.#address)
      this.close(CLOSE.AUTH_TIMEOUT, 'no auth frame in time')
    }, ctx.settings.authTimeout)
  }

  get closed (): boolean { return this.#state === 'closed' }
  /** The verified token's claims, for the app's hooks; null unless the socket logged in with a token. */
  get claims (): Claims | null { return this.#token?.claims ?? null }
  /** Open and not yet authenticated (or still syncing): for the connections gauge. */
  get authenticating (): boolean { return this.#state === 'new' || this.#state === 'syncing' }
  get open (): boolean { return this.#ws.readyState === OPEN }

  /** Sends a channel message's frame (from textFrame). */
  sendFrame (wire: Buffer): void {
    if (this.#state === 'ready' && this.#ws.readyState === OPEN) this.write(wire, 'channel')
  }

  /** Writes a frame built by textFrame unless the client is too slow: then it is cut, and the frame is not taken. */
  write (wire: Buffer, kind: MessageKind = 'user'): boolean {
    if (this.#ws.bufferedAmount + wire.length > this.#ctx.settings.maxBufferedBytes) {
      this.#ctx.log.info({ userId: this.userId, buffered: this.#ws.bufferedAmount }, 'comet: closing a client that reads too slowly')
      this.#cutSlow()
      return false
    }
    // Without compression ws writes every frame at once, in call order, so ours stay in sequence with its own.
    if (this.#ctx.prebuilt) rawSocket(this.#ws).write(wire)
    else this.#ws.send(payloadOf(wire), TEXT)
    this.#ctx.metrics?.delivered(kind)
    return true
  }

  /**
   * Writes a stored message paced by the socket: a backlog is never cut for being large, only a client
   * that does not read.
   */
  writeStored (frame: Buffer): boolean | Promise<boolean> {
    if (this.#ws.bufferedAmount + frame.length <= this.#ctx.settings.maxBufferedBytes) {
      this.#ws.send(frame, TEXT)
      this.#ctx.metrics?.delivered('user')
      return true
    }
    return new Promise((resolve) => this.#ws.send(frame, TEXT, (err) => {
      if (err === undefined || err === null) this.#ctx.metrics?.delivered('user')
      resolve(err === undefined || err === null)
    }))
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
    this.#ctx.metrics?.frame(frame.type)
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
        return await this.#failed(err.sub, err.expired ? 'token expired' : 'authentication failed', err.expired ? 'expired' : 'bad_credentials')
      }
    } else {
      if (userId === null || hash === null) {
        this.#ctx.metrics?.auth('ok', this.#address)
        this.#becomeReady(reply('ready', { userId: null }, ref))
        return
      }
      this.#state = 'syncing'
      const digest = await store.getAuth(userId)
      if (this.closed) return
      if (digest === null || !matches(hash, digest)) return await this.#failed(userId, 'authentication failed', 'bad_credentials')
      proof = { digest }
    }
    // Listen first, then read the queue: a message sent in between is either queued or routed here.
    this.userId = userId
    const stream = this.#stream = new DeviceStream(this)
    await hub.joinUser(stream, userId)
    if (this.closed) return
    const device = this.#ctx.nextDevice()
    const marked = stream.expect(device)
    const result = await store.attach(userId, device, proof, since)
    if (!result.ok) {
      if (result.reason === 'limit') log.info({ userId }, 'comet: device limit reached')
      this.#ctx.metrics?.auth(result.reason === 'limit' ? 'device_limit' : 'revoked', this.#address, userId)
      // A token issued before the user's revocation is a failed login like a wrong hash.
      if (result.reason === 'revoked' && this.#token !== undefined) return await this.#failed(userId, 'authentication failed', null)
      return this.close(result.reason === 'limit' ? CLOSE.DEVICE_LIMIT : CLOSE.AUTH_FAILED,
        result.reason === 'limit' ? 'too many devices' : 'authentication failed')
    }
    if (this.closed) {
      // Closed while the queue was being taken: give it back, and the device slot too. Missed messages
      // stay in the resume log, so they need no giving back.
      this.#ctx.channels.presence.deviceLeft(userId, device)
      hub.giveBack(userId, result.queued)
      return
    }
    this.device = device
    stream.attached(result.queued, since)
    // Messages sent before the attach may still be on their way here: what this device owns is decided
    // once the marker the attach published behind them has come through.
    if (!(await marked)) {
      if (!this.closed) this.close(CLOSE.SERVICE_RESTART, 'routing was interrupted; reconnect')
      return
    }
    if (result.dropped > 0) log.warn({ userId, dropped: result.dropped }, 'comet: offline queue overflowed; oldest messages dropped')
    this.#ctx.metrics?.auth('ok', this.#address, userId)
    if (result.dropped > 0) this.#ctx.metrics?.dropped(result.dropped)
    const { backlog, queued } = stream.own(result.missed, result.synced)
    // `last`: once the stored messages (all at or below it) have arrived, the device has everything up to
    // it, even if it got no message at all: a reconnect passes it as `since`. Exactly `queued` messages
    // come at or below `last`.
    const recovered = result.recovered === null ? {} : { recovered: result.recovered }
    const ready = { userId, queued, dropped: result.dropped, ...recovered, last: String(result.synced) }
    this.#stopAuthTimer()
    this.#send(reply('ready', ready, ref))
    const unsent = await stream.flush(backlog, result.synced)
    if (unsent.length > 0) return hub.giveBack(userId, unsent)
    if (stream.gap) return this.close(CLOSE.SERVICE_RESTART, 'messages may have been missed; reconnect with since')
    stream.ready()
    this.#state = 'ready'
    log.debug({ userId, device }, 'comet: device connected')
  }

  /** A failed login: logged, counted against the limits, answered late (per user id), then closed with 4401. */
  async #failed (userId: string, reason: string, metric: AuthResult | null): Promise<void> {
    this.#ctx.log.info({ userId, address: this.#address }, 'comet: authentication failed')
    if (metric !== null) this.#ctx.metrics?.auth(metric, this.#address, userId)
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

  #onClose (code: number): void {
    if (this.closed) return
    this.#ctx.metrics?.disconnect(code)
    this.#state = 'closed'
    this.#stopAuthTimer()
    this.#token?.stop()
    const { hub } = this.#ctx
    const subs = this.#subs ?? []
    this.#subs = undefined
    this.#ctx.channels.closed(this, subs)
    for (const channel of subs) hub.unsubscribe(this, channel)
    if (this.userId !== null && this.#stream !== undefined) hub.leaveUser(this.#stream, this.userId)
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
