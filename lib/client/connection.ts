import { Requests } from './pending.ts'
import type { Pending } from './pending.ts'
import { backoffDelay } from './backoff.ts'
import { CometClientError } from './errors.ts'
import { PROTOCOL } from '../protocol/names.ts'
import { CLOSE } from '../protocol/close-codes.ts'
import type { CloseEventLike, EventTargetLike, MessageEventLike, WebSocketConstructorLike, WebSocketLike } from './env.ts'
import type { CometStatus, MessageFrame, ReadyInfo, RequestFrame, ServerError, ServerFrame, StatusInfo } from './types.ts'

/** After a 4401, how long a client with a credential function waits before asking it again. */
const AUTH_RETRY_DELAY = 1000
/** The code this client closes a socket with when it gives up on it (connect or ping timeout). */
const GAVE_UP = 4000

/** What a connection reports to whoever owns it: the client in its tab, or the leader tab when sharing. */
export interface ConnectionHost {
  status (status: CometStatus, info: StatusInfo): void
  ready (info: ReadyInfo): void
  message (frame: MessageFrame): void
  error (error: ServerError): void
  /**
   * The last private message id seen, sent as `since` when (re)connecting; with `user` when the page does
   * not name its user (a token or the upgrade hook): the server ignores an id of another user.
   */
  since (): { id: string, user?: string } | undefined
}

/** A hash or a token: the string itself, or a function asked for it on every (re)connect. */
export type Credential = string | (() => string | Promise<string>)

export interface ConnectionOptions {
  url: string
  userId: string | undefined
  hash: Credential | undefined
  token: Credential | undefined
  WebSocket: WebSocketConstructorLike
  baseDelay: number
  maxDelay: number
  pingInterval: number
  connectTimeout: number
  requestTimeout: number
  window: EventTargetLike | undefined
}

/**
 * One WebSocket to the server, kept alive: authenticates, reconnects with backoff, keeps the wanted
 * channels subscribed, matches replies to requests. It knows nothing of callbacks or de-duplication.
 */
export class Connection {
  readonly #opts: ConnectionOptions
  readonly #host: ConnectionHost
  #socket: WebSocketLike | null = null
  #status: CometStatus = 'connecting'
  #stopped = false
  #ready = false
  #attempt = 0
  #ref = 0
  #authRef = 0
  #retryTimer: ReturnType<typeof setTimeout> | undefined
  #connectTimer: ReturnType<typeof setTimeout> | undefined
  #pingTimer: ReturnType<typeof setInterval> | undefined
  #awaitingPong = false
  /** 4401 closes since the last `ready`: with a credential function the first is retried, the second is final. */
  #refusals = 0
  /** The token this socket logged in or last refreshed with, and the timer that refreshes it before it expires. */
  #refreshTimer: ReturnType<typeof setTimeout> | undefined
  #refreshRef = 0
  #wanted = new Set<string>()
  /** subscribe ref → channel, to name the channel in an error reply. */
  readonly #subscribeRefs = new Map<number, string>()
  /** Requests waiting for the connection to be ready, and those sent on the current socket, by ref. */
  readonly #requests = new Requests()
  readonly #onOnline = (): void => {
    if (this.#retryTimer === undefined || this.#stopped) return
    clearTimeout(this.#retryTimer)
    this.#open()
  }

  constructor (opts: ConnectionOptions, host: ConnectionHost) {
    this.#opts = opts
    this.#host = host
  }

  get status (): CometStatus {
    return this.#status
  }

  start (): void {
    this.#opts.window?.addEventListener('online', this.#onOnline)
    this.#open()
  }

  /** Replace the set of channels this socket should be subscribed to (not including `msg`). */
  setChannels (channels: Iterable<string>): void {
    const before = this.#wanted
    this.#wanted = new Set(channels)
    if (!this.#ready) return
    for (const channel of this.#wanted) {
      if (!before.has(channel)) this.#subscribe(channel)
    }
    for (const channel of before) {
      if (!this.#wanted.has(channel)) this.#send({ type: 'unsubscribe', channel })
    }
  }

  /** Send a request once the connection is ready, and resolve with the reply carrying its ref. */
  request (frame: RequestFrame): Promise<ServerFrame> {
    return this.#requests.add(frame, this.#opts.requestTimeout, this.#stopped ? `the client is ${this.#status}` : null,
      this.#ready ? (p) => this.#sendRequest(p) : null)
  }

  close (): void {
    if (this.#stopped) return
    this.#shutDown('closed')
    this.#setStatus('closed', {})
  }

  #open (): void {
    this.#retryTimer = undefined
    const { hash, token } = this.#opts
    const credential = token ?? hash
    if (typeof credential !== 'function') return this.#connect(credential)
    // Asked on every (re)connect: a page fetches a fresh token, or the rotated hash after a 4401.
    let asked: Promise<string>
    try {
      asked = Promise.resolve(credential())
    } catch (err) {
      asked = Promise.reject(err)
    }
    asked.then((value) => {
      if (this.#stopped || this.#retryTimer !== undefined || this.#socket !== null) return
      if (typeof value !== 'string' || value.length === 0) throw new TypeError(`the ${token === undefined ? 'hash' : 'token'} function must resolve to a non-empty string`)
      this.#connect(value)
    }).catch((err: unknown) => {
      if (this.#stopped) return
      this.#host.error({ code: 'credentials', message: err instanceof Error ? err.message : String(err) })
      this.#dropped(undefined)
    })
  }

  #connect (credential: string | undefined): void {
    let socket: WebSocketLike
    try {
      socket = new this.#opts.WebSocket(this.#opts.url, PROTOCOL)
    } catch {
      // A malformed URL or a blocked port: treat it as a failed attempt and keep backing off.
      this.#dropped(undefined)
      return
    }
    this.#socket = socket
    this.#ready = false
    this.#awaitingPong = false
    socket.onopen = () => {
      if (socket !== this.#socket) return
      this.#authRef = ++this.#ref
      const auth: Record<string, unknown> = { type: 'auth', ref: this.#authRef }
      if (this.#opts.token !== undefined) {
        auth['token'] = credential
      } else if (this.#opts.userId !== undefined) {
        auth['userId'] = this.#opts.userId
        auth['hash'] = credential
      }
      // Also without credentials: a page behind the upgrade hook resumes too.
      const since = this.#host.since()
      if (since !== undefined) auth['since'] = since.id
      if (since?.user !== undefined) auth['sinceUser'] = since.user
      this.#send(auth)
      if (this.#opts.token !== undefined && credential !== undefined) this.#scheduleRefresh(credential)
    }
    socket.onmessage = (ev: MessageEventLike) => {
      if (socket === this.#socket) this.#onFrame(ev.data)
    }
    socket.onclose = (ev: CloseEventLike) => {
      if (socket === this.#socket) this.#dropped(ev.code)
    }
    // An error is always followed by a close event, which is where it is handled.
    socket.onerror = () => {}
    this.#connectTimer = setTimeout(() => this.#giveUp(), this.#opts.connectTimeout)
  }

  #onFrame (raw: unknown): void {
    if (typeof raw !== 'string') return
    let frame: ServerFrame
    try {
      // Frames are data only: parsed, never evaluated.
      const parsed: unknown = JSON.parse(raw)
      if (parsed === null || typeof parsed !== 'object' || typeof (parsed as ServerFrame).type !== 'string') return
      frame = parsed as ServerFrame
    } catch {
      return
    }
    this.#awaitingPong = false
    const ref = typeof frame.ref === 'number' ? frame.ref : Number(frame.ref)
    switch (frame.type) {
      case 'ready':
        if (!this.#ready) this.#onReady(frame)
        return
      case 'message': {
        const message = toMessage(frame)
        if (message !== undefined) this.#host.message(message)
        return
      }
      case 'join':
      case 'leave':
      case 'online':
      case 'offline':
        // Presence, delivered to subscribers as an event of its channel.
        if (typeof frame['channel'] === 'string' && typeof frame['userId'] === 'string') {
          this.#host.message({ type: 'message', channel: frame['channel'], event: frame.type, data: null, id: '', userId: frame['userId'] })
        }
        return
      case 'error':
        this.#onError(frame, ref)
        return
      case 'subscribed':
      case 'unsubscribed':
        this.#subscribeRefs.delete(ref)
        return
      case 'pong':
        return
      case 'refreshed':
        return
      default: {
        this.#requests.settle(ref)?.resolve(frame)
      }
    }
  }

  #onReady (frame: ServerFrame): void {
    this.#ready = true
    this.#refusals = 0
    clearTimeout(this.#connectTimer)
    this.#attempt = 0
    // Subscriptions go first: the server answers frames in order, so a request made now or from a
    // listener below (members of a track_ channel, say) is answered with the subscriptions in place.
    for (const channel of this.#wanted) this.#subscribe(channel)
    for (const pending of this.#requests.takeQueued()) this.#sendRequest(pending)
    if (this.#opts.pingInterval > 0) {
      this.#pingTimer = setInterval(() => {
        // Nothing at all came back since the last ping: the socket is dead even if the browser has not noticed.
        if (this.#awaitingPong) {
          this.#giveUp()
          return
        }
        this.#awaitingPong = true
        this.#send({ type: 'ping', ref: ++this.#ref })
      }, this.#opts.pingInterval)
    }
    this.#setStatus('open', {})
    // A status listener may have closed the client.
    if (!this.#ready) return
    const info: ReadyInfo = {
      userId: typeof frame['userId'] === 'string' ? frame['userId'] : null,
      queued: typeof frame['queued'] === 'number' ? frame['queued'] : 0,
      dropped: typeof frame['dropped'] === 'number' ? frame['dropped'] : 0
    }
    if (typeof frame['recovered'] === 'boolean') info.recovered = frame['recovered']
    if (typeof frame['last'] === 'string') info.last = frame['last']
    this.#host.ready(info)
  }

  #onError (frame: ServerFrame, ref: number): void {
    const code = typeof frame['code'] === 'string' ? frame['code'] : 'unknown'
    const message = typeof frame['message'] === 'string' ? frame['message'] : code
    if (ref === this.#authRef && !this.#ready) {
      if (code === 'unavailable') {
        this.#giveUp()
        return
      }
      // The server refused the credentials without closing: retrying the same ones cannot help.
      this.#host.error({ code, message })
      this.#shutDown('auth-failed')
      this.#setStatus('auth-failed', {})
      return
    }
    const pending = this.#requests.settle(ref)
    if (pending !== undefined) {
      pending.reject(new CometClientError(code, message))
      return
    }
    // A refused refresh: the socket lives until the token expires, then reconnects with a new one.
    if (ref === this.#refreshRef) return
    const channel = this.#subscribeRefs.get(ref)
    this.#subscribeRefs.delete(ref)
    this.#host.error(channel === undefined ? { code, message } : { code, message, channel })
  }

  #subscribe (channel: string): void {
    const ref = ++this.#ref
    this.#subscribeRefs.set(ref, channel)
    this.#send({ type: 'subscribe', channel, ref })
  }

  #sendRequest (pending: Pending): void {
    const ref = ++this.#ref
    this.#requests.sent.set(ref, pending)
    this.#send({ ...pending.frame, ref })
  }

  #send (frame: object): void {
    try {
      this.#socket?.send(JSON.stringify(frame))
    } catch {
      // The socket is closing; its close event will follow.
    }
  }

  /**
   * Refreshes a token shortly before it expires: at three quarters of its life, at most a minute ahead.
   * A token function is asked for the new token; a fixed token cannot be refreshed.
   */
  #scheduleRefresh (token: string): void {
    clearTimeout(this.#refreshTimer)
    const ask = this.#opts.token
    const claims = tokenClaims(token)
    if (typeof ask !== 'function' || claims === null || typeof claims['exp'] !== 'number') return
    // The token's remaining life by the page's clock, unless that clock is clearly wrong (the token
    // would be expired): then by the server's, from `iat` to `exp`.
    const exp = claims['exp']
    const left = exp - Date.now() / 1000
    const iat = claims['iat']
    const life = 1000 * (typeof iat === 'number' && (left <= 0 || exp - iat < left) ? exp - iat : Math.max(left, 0))
    const socket = this.#socket
    this.#refreshTimer = setTimeout(() => {
      Promise.resolve(ask()).then((fresh) => {
        if (socket !== this.#socket || typeof fresh !== 'string' || fresh.length === 0) return
        this.#refreshRef = ++this.#ref
        this.#send({ type: 'refresh', token: fresh, ref: this.#refreshRef })
        this.#scheduleRefresh(fresh)
      }).catch(() => {})
    }, Math.max(250, life - Math.min(life / 4, 60_000)))
  }

  /** Drop the current socket without waiting for the browser to notice it is dead, then retry. */
  #giveUp (): void {
    const socket = this.#detach()
    try {
      socket?.close(GAVE_UP, 'client gave up')
    } catch {}
    this.#dropped(undefined)
  }

  #detach (): WebSocketLike | null {
    const socket = this.#socket
    if (socket !== null) {
      socket.onopen = null
      socket.onmessage = null
      socket.onclose = null
      // Not null: the ws package reports closing a socket that is still connecting as an error event,
      // which would be thrown with no listener.
      socket.onerror = () => {}
    }
    this.#socket = null
    return socket
  }

  #dropped (code: number | undefined): void {
    this.#socket = null
    this.#ready = false
    clearTimeout(this.#connectTimer)
    clearInterval(this.#pingTimer)
    this.#subscribeRefs.clear()
    this.#requests.rejectAll((p) => new CometClientError('disconnected', `the connection dropped before the reply to ${p.frame.type}; it may or may not have been done`), false)
    clearTimeout(this.#refreshTimer)
    if (this.#stopped) return
    // Refused with a credential function: ask it once more (a fresh token, a rotated hash) and retry, a
    // second later: a token issued in the second of a revocation has an `iat` before it.
    if (code === CLOSE.AUTH_FAILED && typeof (this.#opts.token ?? this.#opts.hash) === 'function' && this.#refusals++ === 0) {
      this.#retryTimer = setTimeout(() => this.#open(), AUTH_RETRY_DELAY)
      this.#setStatus('connecting', { code, retryIn: AUTH_RETRY_DELAY })
      return
    }
    if (code === CLOSE.AUTH_FAILED || code === CLOSE.REPLACED) {
      const status = code === CLOSE.AUTH_FAILED ? 'auth-failed' : 'closed'
      this.#shutDown(status)
      this.#setStatus(status, { code })
      return
    }
    const delay = backoffDelay(this.#attempt++, this.#opts.baseDelay, this.#opts.maxDelay)
    this.#retryTimer = setTimeout(() => this.#open(), delay)
    this.#setStatus('connecting', code === undefined ? { retryIn: delay } : { code, retryIn: delay })
  }

  /** Stop for good: no socket, no timers, no listeners, every waiting request rejected. */
  #shutDown (why: 'closed' | 'auth-failed'): void {
    this.#stopped = true
    this.#ready = false
    clearTimeout(this.#retryTimer)
    clearTimeout(this.#connectTimer)
    clearInterval(this.#pingTimer)
    clearTimeout(this.#refreshTimer)
    this.#retryTimer = undefined
    this.#opts.window?.removeEventListener('online', this.#onOnline)
    const socket = this.#detach()
    try {
      socket?.close(1000, 'client closed')
    } catch {}
    const error = new CometClientError('closed', why === 'closed' ? 'the client was closed' : 'authentication failed')
    this.#requests.rejectAll(() => error, true)
  }

  #setStatus (status: CometStatus, info: StatusInfo): void {
    this.#status = status
    this.#host.status(status, info)
  }
}

/** The payload of a JWT, unverified (the client only reads `exp` and `iat` to time its refresh), or null. */
function tokenClaims (token: string): Record<string, unknown> | null {
  try {
    const part = (token.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/')
    const claims: unknown = JSON.parse(atob(part + '='.repeat((4 - part.length % 4) % 4)))
    return claims !== null && typeof claims === 'object' ? claims as Record<string, unknown> : null
  } catch {
    return null
  }
}

/** A `message` frame with the fields every message has, or undefined. */
export function toMessage (frame: Record<string, unknown>): MessageFrame | undefined {
  const { channel, event, id, userId } = frame
  if (typeof channel !== 'string' || typeof event !== 'string' || typeof id !== 'string') return undefined
  const message: MessageFrame = { type: 'message', channel, event, data: frame['data'], id }
  if (typeof userId === 'string' || userId === null) message.userId = userId
  return message
}
