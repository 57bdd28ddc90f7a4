import type {
  BroadcastChannelConstructorLike,
  EventTargetLike,
  LockManagerLike,
  WebSocketConstructorLike
} from './env.ts'

/** Connection state, reported by the `status` event. */
export type CometStatus = 'connecting' | 'open' | 'closed' | 'auth-failed'

export interface CometClientOptions {
  /**
   * The plugin's WebSocket route: `wss://example.com/comet`. `http(s)://` is turned into `ws(s)://`;
   * in a browser a path such as `/comet` is resolved against the page's host.
   */
  url: string
  /**
   * The user to sign in as, with `hash`. Omit `userId`, `hash` and `token` for an anonymous connection
   * (public channels only), or when the server's `authenticate` hook knows the user from the page's cookies.
   */
  userId?: string | number
  /**
   * The secret the backend registered with `app.comet.registerAuth(userId, hash)`, or a function that
   * fetches it, asked on every (re)connect: after a 4401 it is asked once more (a rotated hash) before
   * the client gives up with `auth-failed`.
   */
  hash?: string | (() => string | Promise<string>)
  /**
   * A signed token (JWT, the server's `jwt` option) naming the user in `sub`, or a function that fetches
   * one: asked on every (re)connect and shortly before the token expires, to send `refresh`. After a 4401
   * it is asked once more before the client gives up with `auth-failed`. Not with `userId` / `hash`.
   */
  token?: string | (() => string | Promise<string>)
  /**
   * The id of the last private message this user has already seen, when the app keeps it itself. Older
   * or equal ids are dropped, and it is sent as `since` on connect. Given, it is used instead of the id
   * kept by `persistLastId`.
   */
  since?: string
  /**
   * Keep the last private message id in this tab's `sessionStorage` (keyed by URL and user), so a reloaded
   * page resumes from it and gets what was sent during the reload (also with a token or the server's
   * `authenticate` hook: the id is kept with its user). `false` keeps it in memory only. Anonymous
   * connections keep nothing.
   * @default true
   */
  persistLastId?: boolean
  /**
   * The WebSocket class. Needed in Node 20 (pass `WebSocket` from the `ws` package).
   * @default globalThis.WebSocket
   */
  WebSocket?: WebSocketConstructorLike
  /**
   * Share one connection between all tabs of the same origin that connect to the same URL with the same
   * user id and hash: one tab (the leader, elected with the Web Locks API) owns the socket and relays it to the others
   * through a `BroadcastChannel`. Falls back to a connection per tab where those APIs are missing.
   * @default false
   */
  shareConnection?: boolean
  /**
   * Reconnect delays: full jitter, a random delay in `[0, min(maxDelay, baseDelay * 2 ** attempt))`.
   * @default { baseDelay: 1000, maxDelay: 30000 }
   */
  reconnect?: { baseDelay?: number, maxDelay?: number }
  /**
   * Send a `ping` frame this often (ms) once connected; a connection that sent nothing back for two
   * intervals is considered dead and replaced. `0` turns it off.
   * @default 25000
   */
  pingInterval?: number
  /**
   * Give up on a connection attempt that has not reached `ready` after this many ms, and retry.
   * @default 15000
   */
  connectTimeout?: number
  /**
   * Reject `publish()`, `members()` and `history()` that got no reply within this many ms.
   * @default 10000
   */
  requestTimeout?: number
  /**
   * Where to listen for `online` (retry at once when the network comes back) and `pagehide`.
   * @default globalThis in a browser, nothing in Node
   */
  window?: EventTargetLike | null
  /** For tests: the `BroadcastChannel` class and lock manager used by `shareConnection`. */
  sharing?: { BroadcastChannel: BroadcastChannelConstructorLike, locks: LockManagerLike }
}

/** A message as delivered to a `subscribe()` callback. */
export interface CometMessage<T = unknown> {
  /** `msg` for a private message, otherwise the channel name. */
  channel: string
  /**
   * The message's event. Presence arrives as events too: `join` / `leave` on `track_*` channels and
   * `online` / `offline` on `user_status_<id>`, with `userId` set, `data` null and an empty `id`.
   */
  event: string
  data: T
  /** For private messages a decimal string; ids of one user increase in send order. Empty for presence events. */
  id: string
  /**
   * On messages clients published (`web_*`, `webauth_*`): the sender, stamped by the server (null when
   * anonymous). On presence events: the user who joined, left, came online or went offline.
   */
  userId?: string | null
}

/** What `history()` resolves with. */
export interface CometHistory<T = unknown> {
  /** False when the server no longer keeps (or never had) `since`: `messages` is then empty, never partial. */
  recovered: boolean
  /** The messages after `since` (or all kept), oldest first. */
  messages: Array<CometMessage<T>>
}

export interface StatusInfo {
  /** The close code of the socket that went away, if any. */
  code?: number
  /** Milliseconds until the next connection attempt, when one is scheduled. */
  retryIn?: number
}

export interface ReadyInfo {
  userId: string | null
  /** Stored messages that follow: the offline queue and, after a reconnect, the messages this device missed. */
  queued: number
  /** Queued messages the server had to discard because the queue overflowed. */
  dropped: number
  /**
   * Only when the client sent `since` (it had seen a private message): `true` when the server replays
   * every private message after it, `false` when it no longer has them all and replays none, so the app
   * should reload its state from the backend.
   */
  recovered?: boolean
  /**
   * The id of the user's newest private message when the connection became ready. Once the `queued`
   * messages have arrived the device has everything up to it, so `lastMessageId` moves up to it even when
   * no message came: a later reconnect misses nothing sent in between.
   */
  last?: string
}

/** An `error` frame that did not answer one of this client's requests, or that answered a subscribe. */
export interface ServerError {
  code: string
  message: string
  /** The channel, when the error answered a subscription. */
  channel?: string
}

/** The client's own events, for `on()`. */
export interface CometClientEvents {
  status: (status: CometStatus, info: StatusInfo) => void
  ready: (info: ReadyInfo) => void
  error: (error: ServerError) => void
}

/** Frames the server sends. Unknown frames and fields are ignored. */
export interface ServerFrame {
  type: string
  ref?: string | number
  [key: string]: unknown
}

export interface MessageFrame {
  type: 'message'
  channel: string
  event: string
  data: unknown
  id: string
  userId?: string | null
}

/** A request a client sends and waits for a reply to. */
export type RequestFrame =
  | { type: 'publish', channel: string, event: string, data: unknown }
  | { type: 'members', channel: string, after?: string }
  | { type: 'history', channel: string, since?: string }
