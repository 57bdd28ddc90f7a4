import { Connection, toMessage, type ConnectionHost, type ConnectionOptions } from './connection.ts'
import { CometClientError } from './errors.ts'
import { defaultSessionStorage, defaultSharing, defaultWebSocket, defaultWindow, pageLocation, reportError } from './env.ts'
import type { StorageLike } from './env.ts'
import { SharedLink } from './shared.ts'
import { checkName, parseTopic, privateId } from './topics.ts'
import { PRIVATE_CHANNEL } from '../protocol/names.ts'
import type { CometEvents, EventData, TopicData } from './events.ts'
import type { CometClientOptions, CometClientEvents, CometHistory, CometMessage, CometStatus, MessageFrame, RequestFrame, ServerFrame } from './types.ts'

interface Link {
  readonly status: CometStatus
  start (): void
  setChannels (channels: Iterable<string>): void
  request (frame: RequestFrame): Promise<ServerFrame>
  close (): void
}

interface Subscription {
  channel: string
  event: string | null
  callback: (message: CometMessage<never>) => void
}

/**
 * The browser side of fastify-comet.
 *
 * ```js
 * const comet = new CometClient({ url: '/comet', userId: '42', hash })
 * // or: new CometClient({ url: '/comet', token: () => fetchToken() }); behind the upgrade hook: { url } only
 * const off = comet.subscribe('msg.invoice', (m) => show(m.data))
 * ```
 *
 * It connects at once and keeps connecting (backoff with full jitter, capped) until `close()` or a
 * failed authentication. Every subscription is restored after a reconnect, and a private message is
 * never delivered twice: one whose id is not above the last id seen is dropped. The last id is kept in
 * the tab's sessionStorage (`persistLastId`), so a reloaded page resumes where the previous one stopped.
 *
 * `Events` types the data of each event (by default the app's `CometEvents` declaration).
 */
export class CometClient<Events extends object = CometEvents> {
  readonly #link: Link
  readonly #subs = new Set<Subscription>()
  readonly #listeners: { [K in keyof CometClientEvents]: Set<CometClientEvents[K]> } = { status: new Set(), ready: new Set(), error: new Set() }
  #lastId: number | undefined
  #lastIdText: string | undefined
  /** Since the last `ready`: the id the device is in sync with once `left` stored messages have arrived. */
  #syncing: { id: number, text: string, left: number } | undefined
  #closed = false
  readonly #userId: string | undefined
  /**
   * Where this tab keeps the last id across reloads, and under which key. A page that does not name its
   * user (a token, the upgrade hook) keeps `<user> <id>` under its URL alone, and learns the user at `ready`.
   */
  readonly #kept: { storage: StorageLike, key: string } | undefined
  /** On such a page: whose id `#lastId` is (the kept one's, then the signed-in user's). */
  #keptUser: string | undefined

  constructor (options: CometClientOptions) {
    if (options === null || typeof options !== 'object') throw new TypeError('new CometClient({ url, userId, hash }): options are required')
    const userId = options.userId === undefined ? undefined : String(options.userId)
    const { hash, token } = options
    if (token !== undefined) {
      if (userId !== undefined || hash !== undefined) throw new TypeError('token cannot be combined with userId and hash: the token names the user')
      if (!isCredential(token)) throw new TypeError('token must be a non-empty string (a JWT) or a function returning one')
    } else if (userId !== undefined) {
      checkName('userId', userId)
      if (!isCredential(hash)) throw new TypeError('hash is required with userId: the secret your backend registered with app.comet.registerAuth(), or a function returning it')
    } else if (hash !== undefined) {
      throw new TypeError('hash was given without userId')
    }
    this.#userId = userId
    if (options.persistLastId !== undefined && typeof options.persistLastId !== 'boolean') {
      throw new TypeError(`persistLastId must be true or false, got ${String(options.persistLastId)}`)
    }
    const url = resolveUrl(options.url)
    const storage = options.persistLastId === false ? undefined : defaultSessionStorage()
    this.#kept = storage === undefined ? undefined : { storage, key: userId === undefined ? `fastify-comet:last ${url}` : `fastify-comet:last ${url} ${userId}` }
    const since = options.since ?? this.#read()
    if (since !== undefined) {
      const id = privateId(since)
      if (id === undefined) throw new TypeError(`since must be a private message id (a decimal string), got ${JSON.stringify(options.since)}`)
      this.#lastId = id
      this.#lastIdText = since
    }
    const WebSocket = options.WebSocket ?? defaultWebSocket()
    if (WebSocket === undefined) throw new TypeError('no WebSocket implementation: pass one as the WebSocket option (in Node 20: import { WebSocket } from \'ws\')')
    const opts: ConnectionOptions = {
      url,
      userId,
      hash,
      token,
      WebSocket,
      baseDelay: positive('reconnect.baseDelay', options.reconnect?.baseDelay, 1000),
      maxDelay: positive('reconnect.maxDelay', options.reconnect?.maxDelay, 30_000),
      pingInterval: positive('pingInterval', options.pingInterval, 25_000, true),
      connectTimeout: positive('connectTimeout', options.connectTimeout, 15_000),
      requestTimeout: positive('requestTimeout', options.requestTimeout, 10_000),
      window: options.window === null ? undefined : options.window ?? defaultWindow()
    }
    const host: ConnectionHost = {
      status: (status, info) => this.#emit('status', status, info),
      ready: (info) => {
        if (this.#userId === undefined) this.#signedIn(info.userId ?? undefined)
        const id = privateId(info.last)
        this.#syncing = id === undefined ? undefined : { id, text: info.last as string, left: info.queued }
        this.#settle()
        this.#emit('ready', info)
      },
      message: (frame) => this.#dispatch(frame),
      error: (error) => this.#emit('error', error),
      since: () => this.#lastIdText === undefined ? undefined : { id: this.#lastIdText, user: this.#keptUser }
    }
    const sharing = options.shareConnection === true ? options.sharing ?? defaultSharing() : undefined
    this.#link = sharing === undefined ? new Connection(opts, host) : new SharedLink(opts, host, sharing)
    this.#link.start()
  }

  /** `connecting` (also while waiting to retry), `open`, `closed` (by `close()` or replaced by another device) or `auth-failed`. */
  get status (): CometStatus {
    return this.#link.status
  }

  get userId (): string | undefined {
    return this.#userId
  }

  /** The id of the last private message delivered, to keep across a page reload and pass back as `since`. */
  get lastMessageId (): string | undefined {
    return this.#lastIdText
  }

  /**
   * Call `callback` for each message of a topic: `msg` (all private messages), `msg.<event>`,
   * `<channel>` or `<channel>.<event>`. Returns the function that unsubscribes.
   */
  subscribe<Topic extends string> (topic: Topic, callback: (message: CometMessage<TopicData<Topic, Events>>) => void): () => void
  /** The same, with the message data's type given: `subscribe<Invoice>('msg.invoice', …)`. */
  subscribe<T = unknown> (topic: string, callback: (message: CometMessage<NoInfer<T>>) => void): () => void
  subscribe (topic: string, callback: (message: CometMessage<never>) => void): () => void {
    const { channel, event } = parseTopic(topic)
    if (typeof callback !== 'function') throw new TypeError('subscribe(topic, callback): callback must be a function')
    const sub: Subscription = { channel, event, callback }
    this.#subs.add(sub)
    this.#syncChannels()
    return () => {
      if (this.#subs.delete(sub)) this.#syncChannels()
    }
  }

  /** Publish to a channel clients may publish to (`web_*`); resolves with the message id. */
  async publish<E extends string> (channel: string, event: E, data?: EventData<E, Events>): Promise<string> {
    checkName('channel', channel)
    checkName('event', event)
    const reply = await this.#request({ type: 'publish', channel, event, data: data ?? null })
    return String(reply['id'])
  }

  /** The user ids present in a `track_*` channel (or `[id]` / `[]` for `user_status_<id>`). */
  async members (channel: string): Promise<string[]> {
    checkName('channel', channel)
    const members: string[] = []
    // A reply holds what fits in the server's maxPayload; `more` says to ask again after the last id.
    for (let after: string | undefined; ;) {
      const reply = await this.#request(after === undefined ? { type: 'members', channel } : { type: 'members', channel, after })
      const page = Array.isArray(reply['members']) ? reply['members'].map(String) : []
      members.push(...page)
      if (reply['more'] !== true || page.length === 0) return members
      after = page.at(-1)
    }
  }

  /**
   * The messages a channel with history kept after `since` (a channel message id), or all it kept.
   * `recovered: false` (and no messages) when `since` is no longer kept. Rejects with `no_history` on a
   * channel without history.
   */
  async history<T = unknown> (channel: string, since?: string): Promise<CometHistory<T>> {
    checkName('channel', channel)
    if (since !== undefined && typeof since !== 'string') throw new TypeError('since must be a channel message id (a string)')
    const messages: Array<CometMessage<T>> = []
    // A reply holds what fits in the server's maxPayload; `more` says to ask again from the last id.
    for (let after = since; ;) {
      const reply = await this.#request(after === undefined ? { type: 'history', channel } : { type: 'history', channel, since: after })
      // A later page that lost its `since` (trimmed meanwhile) makes the whole read unrecovered: never partial.
      if (reply['recovered'] !== true) return { recovered: false, messages: [] }
      const before = messages.length
      for (const frame of Array.isArray(reply['messages']) ? reply['messages'] as unknown[] : []) {
        const message = frame !== null && typeof frame === 'object' ? toMessage(frame as Record<string, unknown>) : undefined
        if (message !== undefined) messages.push(publicMessage(message) as CometMessage<T>)
      }
      const last = messages.at(-1)
      if (reply['more'] !== true || messages.length === before || last === undefined) return { recovered: true, messages }
      after = last.id
    }
  }

  on<K extends keyof CometClientEvents> (event: K, listener: CometClientEvents[K]): () => void {
    const listeners = this.#listeners[event] as Set<CometClientEvents[K]> | undefined
    if (listeners === undefined) throw new TypeError(`unknown event ${String(event)}: use status, ready or error`)
    listeners.add(listener)
    return () => { listeners.delete(listener) }
  }

  /** Disconnect for good. Pending requests are rejected; with `shareConnection`, another tab takes over. */
  close (): void {
    if (this.#closed) return
    this.#closed = true
    this.#link.close()
    this.#subs.clear()
  }

  #request (frame: RequestFrame): Promise<ServerFrame> {
    if (this.#closed) return Promise.reject(new CometClientError('closed', 'the client was closed'))
    return this.#link.request(frame)
  }

  #syncChannels (): void {
    const channels = new Set<string>()
    for (const sub of this.#subs) {
      if (sub.channel !== PRIVATE_CHANNEL) channels.add(sub.channel)
    }
    this.#link.setChannels(channels)
  }

  #dispatch (frame: MessageFrame): void {
    if (frame.channel === PRIVATE_CHANNEL) {
      const id = privateId(frame.id)
      if (id !== undefined) {
        const syncing = this.#syncing
        // The stored messages come first, all at or below `last`: one above it means they are all in.
        if (syncing !== undefined) syncing.left = id > syncing.id ? 0 : syncing.left - 1
        // Seen already (a resume, a queue flush racing a live send, a leader handover): drop it.
        const seen = this.#lastId !== undefined && id <= this.#lastId
        if (!seen) this.#setLast(id, frame.id)
        this.#settle()
        if (seen) return
      }
    }
    const message = publicMessage(frame) as CometMessage<never>
    for (const sub of [...this.#subs]) {
      if (sub.channel !== frame.channel || (sub.event !== null && sub.event !== frame.event)) continue
      try {
        sub.callback(message)
      } catch (error) {
        reportError(error)
      }
    }
  }

  /** Once the stored messages announced by `ready` are in, the device is in sync up to its `last`. */
  #settle (): void {
    const syncing = this.#syncing
    if (syncing === undefined || syncing.left > 0) return
    this.#syncing = undefined
    if (this.#lastId === undefined || syncing.id > this.#lastId) this.#setLast(syncing.id, syncing.text)
  }

  /** On a page that does not name its user: an id kept for another user says nothing about this one's. */
  #signedIn (user: string | undefined): void {
    if (this.#keptUser !== undefined && user !== this.#keptUser) {
      this.#lastId = undefined
      this.#lastIdText = undefined
    }
    this.#keptUser = user
  }

  /** Written at once, not on pagehide: a message dispatched after pagehide counts as seen too. */
  #setLast (id: number, text: string): void {
    this.#lastId = id
    this.#lastIdText = text
    if (this.#kept === undefined) return
    if (this.#userId === undefined && this.#keptUser === undefined) return
    try {
      this.#kept.storage.setItem(this.#kept.key, this.#userId === undefined ? `${this.#keptUser} ${text}` : text)
    } catch {
      // Storage full or blocked: the id stays in memory, as with persistLastId: false.
    }
  }

  /** The id the previous page of this tab kept, if it is one. */
  #read (): string | undefined {
    if (this.#kept === undefined) return undefined
    try {
      const kept = this.#kept.storage.getItem(this.#kept.key) ?? ''
      const [user, text] = this.#userId === undefined ? kept.split(' ') : [undefined, kept]
      if (text === undefined || privateId(text) === undefined) return undefined
      this.#keptUser = user
      return text
    } catch {
      return undefined
    }
  }

  #emit<K extends keyof CometClientEvents> (event: K, ...args: Parameters<CometClientEvents[K]>): void {
    for (const listener of [...this.#listeners[event]]) {
      try {
        (listener as (...a: Parameters<CometClientEvents[K]>) => void)(...args)
      } catch (error) {
        reportError(error)
      }
    }
  }
}

function publicMessage (frame: MessageFrame): CometMessage {
  const message: CometMessage = { channel: frame.channel, event: frame.event, data: frame.data, id: frame.id }
  if (frame.userId !== undefined) message.userId = frame.userId
  return message
}

function isCredential (value: unknown): boolean {
  return typeof value === 'function' || (typeof value === 'string' && value.length > 0)
}

function resolveUrl (url: string): string {
  if (typeof url !== 'string' || url.length === 0) throw new TypeError('url is required: the plugin\'s WebSocket route, such as wss://example.com/comet')
  if (/^wss?:\/\//i.test(url)) return url
  if (/^https?:\/\//i.test(url)) return url.replace(/^http/i, 'ws')
  const location = pageLocation()
  if (url.startsWith('/') && location !== undefined) {
    return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}${url}`
  }
  throw new TypeError(`url must start with ws://, wss://, http://, https:// or (in a page) /, got ${JSON.stringify(url)}`)
}

function positive (name: string, value: number | undefined, fallback: number, zeroOk = false): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0 || (value === 0 && !zeroOk)) {
    throw new TypeError(`${name} must be a ${zeroOk ? 'non-negative' : 'positive'} number of milliseconds, got ${String(value)}`)
  }
  return value
}
