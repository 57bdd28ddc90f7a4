import type { FastifyBaseLogger } from 'fastify'
import type { WebSocket, RawData } from 'ws'
import { expiresOf, matches } from '../auth/hash.ts'
import type { AuthLimits } from '../auth/limits.ts'
import type { Vouched } from '../auth/hook.ts'
import { TokenRejected } from '../auth/jwt.ts'
import type { Claims, JwtSettings } from '../auth/jwt.ts'
import { TokenSession } from '../auth/session.ts'
import { rawSocket } from '../internals.ts'
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
import type { AddressCounts } from './addresses.ts'

export interface ConnectionContext {
  settings: Settings
  store: Store
  hub: Hub<Connection>
  log: FastifyBaseLogger
  limits: AuthLimits | null
  /** Token verification (the `jwt` option), or null when tokens are not accepted. */
  jwt: JwtSettings | null
  channels: Channels
  /** Sockets per address not authenticated as a user (pending auth, or anonymous). */
  anonymous: AddressCounts
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
/** The connection a socket belongs to, for the shared listeners. */
const kConnection = Symbol('comet connection')
type Owned = WebSocket & { [kConnection]: Connection }
const OPEN = 1
const CLOSED = 3
const TEXT = { binary: false }
/** Frames a client may send ahead while one of its frames waits on the store; memory stays bounded. */
const MAX_DEFERRED = 128
/** How long a client cut for being slow may go without reading before its socket is destroyed. */
const SLOW_CLOSE_GRACE = 1000
/** How often a socket whose reading is paused checks its outbound buffer. */
const PAUSE_POLL = 50
/** How long a paused socket may read nothing of what it is owed before it is cut (4413). */
const STALL_LIMIT = 5000
/** Longest delay a timer takes. */
const MAX_TIMER = 2_147_483_647

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
  /**
   * The socket's bytes read at the last heartbeat: a client that sent nothing since, not even the pong to
   * that ping, is gone. Read off the socket rather than a pong listener: a fourth listener grows every
   * socket's listener table.
   */
  #read = -1
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
  /** The frame bucket (settings.frameRate): tokens left at #stamp; frames refused in a row. */
  #tokens: number
  #stamp: number
  #refused = 0
  /** Reading is paused while the outbound buffer is over half of maxBufferedBytes. */
  #paused = false
  /** Counted in ctx.anonymous until authenticated as a user. */
  #anonymous = true
  /** Ends the session when the hash it authenticated with expires (only hashes with a ttl). */
  #expiry: NodeJS.Timeout | undefined

  constructor (ws: WebSocket, ctx: ConnectionContext, address: string, vouched: Vouched | null = null) {
    this.#ws = ws
    this.#ctx = ctx
    this.#address = address
    this.#tokens = ctx.settings.frameRate.burst
    this.#stamp = Date.now()
    ctx.anonymous.add(address)
    this.#vouched = vouched
    // Shared listeners that find the connection on the socket, not closures per socket: memory per idle
    // connection is what scales.
    ;(ws as Owned)[kConnection] = this
    ws.on('message', Connection.#message)
    ws.on('close', Connection.#close)
    ws.on('error', terminate)
    this.#authTimer = setTimeout(() => {
      this.#ctx.metrics?.auth('timeout', this.#address)
      this.close(CLOSE.AUTH_TIMEOUT, 'no auth frame in time')
    }, ctx.settings.authTimeout)
  }

  static #message (this: WebSocket, data: RawData, isBinary: boolean): void { (this as Owned)[kConnection].#onMessage(data, isBinary) }
  static #close (this: WebSocket, code: number): void { (this as Owned)[kConnection].#onClose(code) }

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
    const buffered = this.#ws.bufferedAmount + wire.length
    if (!this.#fits(buffered)) return false
    // Without compression ws writes every frame at once, in call order, so ours stay in sequence with its own.
    if (this.#ctx.prebuilt) rawSocket(this.#ws).write(wire)
    else this.#ws.send(payloadOf(wire), TEXT)
    this.#ctx.metrics?.delivered(kind)
    if (buffered > this.#ctx.settings.maxBufferedBytes / 2) this.#pause()
    return true
  }

  /** Whether `buffered` outbound bytes are within maxBufferedBytes; if not, the client is cut (4413). */
  #fits (buffered: number): boolean {
    if (buffered <= this.#ctx.settings.maxBufferedBytes) return true
    this.#ctx.log.info({ userId: this.userId, buffered: this.#ws.bufferedAmount }, 'comet: closing a client that reads too slowly')
    this.#cutSlow()
    return false
  }

  /**
   * Backpressure: stops reading the client's frames while what we owe it is over half of maxBufferedBytes,
   * so requests cannot pile up replies; reads again once the buffer is back under.
   */
  #pause (): void {
    if (this.#paused || this.#ws.readyState !== OPEN) return
    this.#paused = true
    this.#ws.pause()
    const raw = rawSocket(this.#ws)
    let written = raw.bytesWritten
    let since = Date.now()
    const check = (): void => {
      if (this.#ws.readyState !== OPEN) return
      if (this.#ws.bufferedAmount > this.#ctx.settings.maxBufferedBytes / 2) {
        if (raw.bytesWritten !== written) {
          written = raw.bytesWritten
          since = Date.now()
        } else if (Date.now() - since > STALL_LIMIT) {
          // It reads nothing at all: it would hold its buffer (and its place) forever.
          this.#ctx.log.info({ userId: this.userId, buffered: this.#ws.bufferedAmount }, 'comet: closing a client that stopped reading')
          return this.#cutSlow()
        }
        setTimeout(check, PAUSE_POLL).unref()
        return
      }
      this.#paused = false
      this.#ws.resume()
      this.#drainDeferred()
    }
    check()
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

  /** Heartbeat: cut a socket that sent nothing since the previous ping, not even its pong; ping the others. */
  heartbeat (): void {
    const read = rawSocket(this.#ws)?.bytesRead ?? this.#read
    if (read === this.#read) return this.#ws.terminate()
    this.#read = read
    this.#ws.ping()
  }

  terminate (): void { this.#ws.terminate() }

  close (code: number, reason: string): void {
    if (this.#ws.readyState === OPEN || this.#ws.readyState === 0) this.#ws.close(code, reason)
  }

  /** Sends a reply frame; replies count against maxBufferedBytes as messages do. */
  #send (text: string): void {
    if (this.#ws.readyState !== OPEN) return
    const buffered = this.#ws.bufferedAmount + Buffer.byteLength(text)
    if (!this.#fits(buffered)) return
    this.#ws.send(text)
    if (buffered > this.#ctx.settings.maxBufferedBytes / 2) this.#pause()
  }

  /**
   * The frame bucket: true when the frame may be handled. A refused frame is dropped unread; the first
   * of a run gets `rate_limited`, and a run longer than the burst closes the connection (1008).
   */
  #admit (): boolean {
    const { rate, burst } = this.#ctx.settings.frameRate
    if (rate === 0) return true
    const now = Date.now()
    const tokens = Math.min(burst, this.#tokens + (now - this.#stamp) * rate / 1000)
    this.#stamp = now
    if (tokens >= 1) {
      this.#tokens = tokens - 1
      this.#refused = 0
      return true
    }
    this.#tokens = tokens
    if (this.#refused++ === 0) {
      this.#send(errorFrame('rate_limited', `at most ${rate} frames per second (burst ${burst}); frames are dropped`))
    } else if (this.#refused > burst) {
      this.#ctx.log.info({ userId: this.userId, address: this.#address }, 'comet: closing a client that floods frames')
      this.close(CLOSE.POLICY, 'too many frames')
      // It would not read its close frame before its flood: stop reading, cut it after a grace.
      this.#ws.pause()
      setTimeout(() => this.#ws.terminate(), SLOW_CLOSE_GRACE).unref()
    }
    return false
  }

  #onMessage (data: RawData, isBinary: boolean): void {
    if (this.#ws.readyState !== OPEN || !this.#admit()) return
    // Frames are handled one at a time, in order: while one waits on the store (or reading is paused), the
    // next ones wait too.
    if (this.#busy || this.#paused) {
      this.#deferred ??= []
      if (this.#deferred.length >= MAX_DEFERRED) return this.close(CLOSE.POLICY, 'too many frames in flight')
      this.#deferred.push([data, isBinary])
      return
    }
    this.#handleRaw(data, isBinary)
  }

  #handleRaw (data: RawData, isBinary: boolean): void {
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
      this.#drainDeferred()
    })
  }

  /** Handles the frames that waited, in order, until one waits on the store again. */
  #drainDeferred (): void {
    while (!this.#busy && !this.#paused && this.#deferred !== undefined && this.#deferred.length > 0 && this.#ws.readyState === OPEN) {
      const [data, isBinary] = this.#deferred.shift() as [RawData, boolean]
      this.#handleRaw(data, isBinary)
    }
    if (this.#deferred?.length === 0) this.#deferred = undefined
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

  async #authenticate ({ userId, hash, token, since: given, sinceUser, ref }: ClientFrame & { type: 'auth' }): Promise<void> {
    const { store, hub, log } = this.#ctx
    let proof: AuthProof
    /** The hash's stored record, for its expiry (hash logins only). */
    let record: string | null = null
    if (this.#vouched !== null) {
      this.#state = 'syncing'
      userId = this.#vouched.userId
      proof = { issuedAt: this.#vouched.at }
    } else if (token !== null) {
      const jwt = this.#ctx.jwt
      if (jwt === null) return this.close(CLOSE.AUTH_FAILED, 'tokens are not accepted here')
      this.#state = 'syncing'
      const checked = await this.#attempt(jwt.verify(token).then((verified) => verified, (err: unknown) => {
        if (err instanceof TokenRejected) return err
        throw err
      }), (outcome) => !(outcome instanceof TokenRejected))
      if (checked === undefined || this.closed) return
      if (checked instanceof TokenRejected) {
        return await this.#failed(checked.sub, checked.expired ? 'token expired' : 'authentication failed', checked.expired ? 'expired' : 'bad_credentials')
      }
      userId = checked.userId
      proof = { issuedAt: checked.issuedAt }
      this.#token = new TokenSession(checked, () => this.close(CLOSE.AUTH_FAILED, 'token expired'))
    } else {
      if (userId === null || hash === null) {
        if (!this.#ctx.settings.allowAnonymous) return this.close(CLOSE.AUTH_FAILED, 'credentials required')
        this.#ctx.metrics?.auth('ok', this.#address)
        this.#becomeReady(reply('ready', { userId: null }, ref))
        return
      }
      this.#state = 'syncing'
      // Unknown users are compared against a dummy digest: the answer takes as long.
      const judged = await this.#attempt(store.getAuth(userId).then((stored) => ({ stored, ok: matches(hash, stored) })), (j) => j.ok)
      if (judged === undefined || this.closed) return
      const digest = judged.stored
      if (!judged.ok || digest === null) return await this.#failed(userId, 'authentication failed', 'bad_credentials')
      proof = { digest }
      record = digest
    }
    // Another user's last id (a page that kept it before its session changed) says nothing about this one.
    const since = sinceUser === null || sinceUser === userId ? given : null
    // Listen first, then read the queue: a message sent in between is either queued or routed here. Only
    // once the credentials are good: a login that fails after listening would hold messages it cannot tell
    // from those it owes, and giving them all back would queue copies of messages already delivered.
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
    this.#authenticated()
    if (record !== null) this.#expireAt(expiresOf(record), record)
    this.#send(reply('ready', ready, ref))
    const unsent = await stream.flush(backlog, result.synced)
    if (unsent.length > 0) return hub.giveBack(userId, unsent)
    if (stream.gap) return this.close(CLOSE.SERVICE_RESTART, 'messages may have been missed; reconnect with since')
    stream.ready()
    this.#state = 'ready'
    log.debug({ userId, device }, 'comet: device connected')
  }

  /** No longer counted among the address's anonymous sockets. */
  #authenticated (): void {
    if (!this.#anonymous) return
    this.#anonymous = false
    this.#ctx.anonymous.delete(this.#address)
  }

  /**
   * Ends the session when the hash expires (closed with 4401, `expired`), unless by then the user has a new
   * hash (rotation): the store is read again at expiry, so every instance decides alike.
   */
  #expireAt (expires: number | null, record: string): void {
    clearTimeout(this.#expiry)
    this.#expiry = undefined
    if (expires === null || this.closed) return
    this.#expiry = setTimeout(() => {
      const userId = this.userId as string
      if (Date.now() < expires) return this.#expireAt(expires, record)
      this.#ctx.store.getAuth(userId).then((now) => {
        if (now === null || now === record) return this.close(CLOSE.AUTH_FAILED, 'expired')
        this.#expireAt(expiresOf(now), now)
      }, (err: unknown) => {
        this.#ctx.log.warn({ err, userId }, 'comet: could not check an expiring hash; retrying')
        this.#expireAt(Date.now() + this.#ctx.settings.heartbeatInterval, record)
      })
    }, Math.min(Math.max(expires - Date.now(), 0), MAX_TIMER))
    this.#expiry.unref()
  }

  /**
   * Runs a credential check as one attempt against the address's failed-auth budget: counted from the
   * frame's arrival, in the same round trip as the check (so parallel guesses cannot all be judged before
   * their failures count), forgiven when `ok` says it succeeded. Undefined: the budget is spent, and the
   * socket is closed (a correct credential too).
   */
  async #attempt<T> (check: Promise<T>, ok: (outcome: T) => boolean): Promise<T | undefined> {
    const limits = this.#ctx.limits
    const [outcome, admitted] = await Promise.all([check, limits === null ? null : limits.admit(this.#address)])
    if (admitted === false) {
      this.#ctx.log.info({ address: this.#address }, 'comet: authentication refused: too many failed attempts from the address')
      this.#ctx.metrics?.auth('rate_limited', this.#address)
      this.close(CLOSE.AUTH_LIMIT, 'too many failed authentications')
      return undefined
    }
    if (admitted === true) this.#ctx.hub.track((limits as AuthLimits).settle(this.#address, !ok(outcome) && !this.closed), 'settling an authentication attempt')
    return outcome
  }

  /** A failed login: logged, counted against the limits, answered late (per user id), then closed with 4401. */
  async #failed (userId: string, reason: string, metric: AuthResult | null): Promise<void> {
    this.#ctx.log.info({ userId, address: this.#address }, 'comet: authentication failed')
    if (metric !== null) this.#ctx.metrics?.auth(metric, this.#address, userId)
    // The socket handles no other frame meanwhile.
    const delay = this.#ctx.limits?.failed(userId) ?? 0
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
    // An anonymous connection stays counted against its address.
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
    this.#authenticated()
    clearTimeout(this.#expiry)
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
