import { pending } from './pending.ts'
import type { Pending } from './pending.ts'
import { backoffDelay } from './backoff.ts'
import { CometClientError } from './errors.ts'
import { PROTOCOL } from './version.ts'
import type { CloseEventLike, EventTargetLike, MessageEventLike, WebSocketConstructorLike, WebSocketLike } from './env.ts'
import type { CometStatus, MessageFrame, ReadyInfo, RequestFrame, ServerError, ServerFrame, StatusInfo } from './types.ts'

/** Close codes after which trying again cannot help. */
const AUTH_FAILED = 4401
const REPLACED = 4409
/** The code this client closes a socket with when it gives up on it (connect or ping timeout). */
const GAVE_UP = 4000

/** What a connection reports to whoever owns it: the client in its tab, or the leader tab when sharing. */
export interface ConnectionHost {
  status (status: CometStatus, info: StatusInfo): void
  ready (info: ReadyInfo): void
  message (frame: MessageFrame): void
  error (error: ServerError): void
  /** The last private message id seen, sent as `since` when (re)connecting. */
  since (): string | undefined
}

export interface ConnectionOptions {
  url: string
  userId: string | undefined
  hash: string | undefined
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
  #wanted = new Set<string>()
  /** subscribe ref → channel, to name the channel in an error reply. */
  readonly #subscribeRefs = new Map<number, string>()
  /** Requests sent on the current socket, by ref. */
  readonly #inFlight = new Map<number, Pending>()
  /** Requests waiting for the connection to be ready. */
  #queue: Pending[] = []
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
    return new Promise((resolve, reject) => {
      if (this.#stopped) {
        reject(new CometClientError('closed', `the client is ${this.#status}`))
        return
      }
      const request = pending(frame, resolve, reject, this.#opts.requestTimeout, (p) => {
        this.#queue = this.#queue.filter((q) => q !== p)
        for (const [ref, q] of this.#inFlight) {
          if (q === p) this.#inFlight.delete(ref)
        }
      })
      if (this.#ready) this.#sendRequest(request)
      else this.#queue.push(request)
    })
  }

  close (): void {
    if (this.#stopped) return
    this.#shutDown('closed')
    this.#setStatus('closed', {})
  }

  #open (): void {
    this.#retryTimer = undefined
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
      if (this.#opts.userId !== undefined) {
        auth['userId'] = this.#opts.userId
        auth['hash'] = this.#opts.hash
        const since = this.#host.since()
        if (since !== undefined) auth['since'] = since
      }
      this.#send(auth)
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
      default: {
        const pending = this.#inFlight.get(ref)
        if (pending === undefined) return
        this.#inFlight.delete(ref)
        clearTimeout(pending.timer)
        pending.resolve(frame)
      }
    }
  }

  #onReady (frame: ServerFrame): void {
    this.#ready = true
    clearTimeout(this.#connectTimer)
    this.#attempt = 0
    // Subscriptions go first: the server answers frames in order, so a request made now or from a
    // listener below (members of a track_ channel, say) is answered with the subscriptions in place.
    for (const channel of this.#wanted) this.#subscribe(channel)
    const queue = this.#queue
    this.#queue = []
    for (const pending of queue) this.#sendRequest(pending)
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
    const pending = this.#inFlight.get(ref)
    if (pending !== undefined) {
      this.#inFlight.delete(ref)
      clearTimeout(pending.timer)
      pending.reject(new CometClientError(code, message))
      return
    }
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
    this.#inFlight.set(ref, pending)
    this.#send({ ...pending.frame, ref })
  }

  #send (frame: object): void {
    try {
      this.#socket?.send(JSON.stringify(frame))
    } catch {
      // The socket is closing; its close event will follow.
    }
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
    for (const pending of this.#inFlight.values()) {
      clearTimeout(pending.timer)
      pending.reject(new CometClientError('disconnected', `the connection dropped before the reply to ${pending.frame.type}; it may or may not have been done`))
    }
    this.#inFlight.clear()
    if (this.#stopped) return
    if (code === AUTH_FAILED || code === REPLACED) {
      const status = code === AUTH_FAILED ? 'auth-failed' : 'closed'
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
    this.#retryTimer = undefined
    this.#opts.window?.removeEventListener('online', this.#onOnline)
    const socket = this.#detach()
    try {
      socket?.close(1000, 'client closed')
    } catch {}
    const error = new CometClientError('closed', why === 'closed' ? 'the client was closed' : 'authentication failed')
    for (const pending of [...this.#inFlight.values(), ...this.#queue]) {
      clearTimeout(pending.timer)
      pending.reject(error)
    }
    this.#inFlight.clear()
    this.#queue = []
  }

  #setStatus (status: CometStatus, info: StatusInfo): void {
    this.#status = status
    this.#host.status(status, info)
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
