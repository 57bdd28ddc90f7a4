/**
 * The few browser APIs the client uses, described by their shape only.
 *
 * The client is compiled without the DOM library so it type-checks in the same program as the
 * Node server code; a browser `WebSocket`, the `ws` package's `WebSocket` and Node 22's global
 * `WebSocket` all fit `WebSocketConstructorLike`.
 */

/** The part of a WebSocket the client uses. */
export interface WebSocketLike {
  readonly readyState: number
  send (data: string): void
  close (code?: number, reason?: string): void
  onopen: ((ev: never) => unknown) | null
  onmessage: ((ev: never) => unknown) | null
  onclose: ((ev: never) => unknown) | null
  onerror: ((ev: never) => unknown) | null
}

/** A WebSocket class: the browser's `WebSocket`, or `WebSocket` from the `ws` package in Node. */
export type WebSocketConstructorLike = new (url: string, protocols?: string | string[]) => WebSocketLike

export interface MessageEventLike { data: unknown }
export interface CloseEventLike { code: number, reason: string }

/** `BroadcastChannel` as the client uses it. */
export interface BroadcastChannelLike {
  postMessage (message: unknown): void
  close (): void
  onmessage: ((ev: never) => unknown) | null
}
export type BroadcastChannelConstructorLike = new (name: string) => BroadcastChannelLike

/** `navigator.locks` (Web Locks API) as the client uses it. */
export interface LockManagerLike {
  request (name: string, options: { signal?: AbortSignal }, callback: () => Promise<void>): Promise<unknown>
}

/** Something that fires `online` (the browser's `window`). */
export interface EventTargetLike {
  addEventListener (type: string, listener: () => void): void
  removeEventListener (type: string, listener: () => void): void
}

/** `sessionStorage` as the client uses it. */
export interface StorageLike {
  getItem (key: string): string | null
  setItem (key: string, value: string): void
}

interface GlobalsLike {
  sessionStorage?: StorageLike
  WebSocket?: WebSocketConstructorLike
  BroadcastChannel?: BroadcastChannelConstructorLike
  navigator?: { locks?: LockManagerLike }
  location?: { protocol: string, host: string }
  addEventListener?: EventTargetLike['addEventListener']
  removeEventListener?: EventTargetLike['removeEventListener']
  reportError?: (error: unknown) => void
}

const g = globalThis as unknown as GlobalsLike

export function defaultWebSocket (): WebSocketConstructorLike | undefined {
  return g.WebSocket
}

export function defaultSharing (): { BroadcastChannel: BroadcastChannelConstructorLike, locks: LockManagerLike } | undefined {
  const locks = g.navigator?.locks
  if (g.BroadcastChannel === undefined || locks === undefined) return undefined
  return { BroadcastChannel: g.BroadcastChannel, locks }
}

/** The page's window in a browser; undefined in Node. */
export function defaultWindow (): EventTargetLike | undefined {
  if (typeof g.addEventListener !== 'function' || typeof g.removeEventListener !== 'function') return undefined
  return globalThis as unknown as EventTargetLike
}

/** This tab's `sessionStorage`, or undefined (Node, or a page where storage is blocked). */
export function defaultSessionStorage (): StorageLike | undefined {
  try {
    return g.sessionStorage ?? undefined
  } catch {
    return undefined
  }
}

export function pageLocation (): { protocol: string, host: string } | undefined {
  return g.location
}

/** Report an exception thrown by a user's callback without breaking the client's own loop. */
export function reportError (error: unknown): void {
  if (typeof g.reportError === 'function') {
    g.reportError(error)
    return
  }
  setTimeout(() => { throw error }, 0)
}
