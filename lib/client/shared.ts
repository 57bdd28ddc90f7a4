import { Requests } from './pending.ts'
import type { Pending } from './pending.ts'
import { Connection, type ConnectionHost, type ConnectionOptions } from './connection.ts'
import { CometClientError } from './errors.ts'
import type { BroadcastChannelLike, BroadcastChannelConstructorLike, LockManagerLike, MessageEventLike } from './env.ts'
import type { CometStatus, MessageFrame, ReadyInfo, RequestFrame, ServerError, ServerFrame, StatusInfo } from './types.ts'

/**
 * What tabs say to each other on the BroadcastChannel. `from` is the sender's tab id; `to` names the one
 * tab a reply is for. Frames and data cross as structured clones, never as code.
 */
type Note =
  | { t: 'hello', from: string, channels: string[] }
  | { t: 'channels', from: string, channels: string[] }
  | { t: 'bye', from: string }
  | { t: 'leader', from: string }
  | { t: 'state', from: string, to: string, status: CometStatus }
  | { t: 'status', from: string, status: CometStatus, info: StatusInfo }
  | { t: 'ready', from: string, info: ReadyInfo }
  | { t: 'message', from: string, frame: MessageFrame }
  | { t: 'error', from: string, error: ServerError }
  | { t: 'req', from: string, to: string, rid: number, frame: RequestFrame }
  | { t: 'res', from: string, to: string, rid: number, frame?: ServerFrame, code?: string, message?: string }

export interface Sharing {
  BroadcastChannel: BroadcastChannelConstructorLike
  locks: LockManagerLike
}

/**
 * One socket for all tabs of a user. Every tab asks for the same Web Lock; the tab that holds it is the
 * leader and runs the `Connection`, subscribed to the union of every tab's channels, and relays what the
 * server sends to the other tabs. When the leader tab goes away its lock is released, the next tab in
 * line becomes leader and connects with `since` = the last private id it saw, so the server can hand it
 * what arrived in between (the offline queue covers the gap while no tab is connected).
 */
export class SharedLink {
  readonly #opts: ConnectionOptions
  readonly #host: ConnectionHost
  readonly #sharing: Sharing
  readonly #name: string
  readonly #tab = Math.random().toString(36).slice(2) + Date.now().toString(36)
  #channel: BroadcastChannelLike | null = null
  #abort: AbortController | null = null
  #release: (() => void) | undefined
  #closed = false
  #status: CometStatus = 'connecting'
  #own: string[] = []
  /** As leader: the socket, and the channels each other tab wants. */
  #connection: Connection | null = null
  readonly #tabs = new Map<string, string[]>()
  /** As follower: the leader's tab id, and requests waiting for or sent to it. */
  #leader: string | null = null
  #rid = 0
  readonly #requests = new Requests()
  readonly #onPageHide = (): void => { this.#post({ t: 'bye', from: this.#tab }) }

  constructor (opts: ConnectionOptions, host: ConnectionHost, sharing: Sharing) {
    this.#opts = opts
    this.#host = host
    this.#sharing = sharing
    // Tabs share a socket only when they would open the same one: same URL, user and hash (or token). A
    // secret is reduced to a fingerprint, so it does not appear in lock or channel names; credential
    // functions of one origin fetch the same session's credentials, so they share by URL and user.
    this.#name = `fastify-comet ${opts.url} ${opts.userId ?? ''} ${secretKey(opts.hash)} ${opts.token === undefined ? '' : `t${secretKey(opts.token)}`}`
  }

  get status (): CometStatus {
    return this.#status
  }

  start (): void {
    const channel = new this.#sharing.BroadcastChannel(this.#name)
    channel.onmessage = (ev: MessageEventLike) => { this.#onNote(ev.data as Note) }
    this.#channel = channel
    this.#opts.window?.addEventListener('pagehide', this.#onPageHide)
    this.#post({ t: 'hello', from: this.#tab, channels: this.#own })
    this.#abort = new AbortController()
    this.#sharing.locks.request(this.#name, { signal: this.#abort.signal }, () => this.#lead())
      .catch(() => {
        // Aborted by close() while waiting in line.
      })
  }

  setChannels (channels: Iterable<string>): void {
    this.#own = [...channels]
    if (this.#connection !== null) this.#connection.setChannels(this.#union())
    else this.#post({ t: 'channels', from: this.#tab, channels: this.#own })
  }

  request (frame: RequestFrame): Promise<ServerFrame> {
    if (this.#connection !== null) return this.#connection.request(frame)
    const leader = this.#leader
    return this.#requests.add(frame, this.#opts.requestTimeout, this.#closed ? 'the client was closed' : null,
      leader !== null ? (p) => this.#forward(p, leader) : null)
  }

  close (): void {
    if (this.#closed) return
    this.#post({ t: 'bye', from: this.#tab })
    const connection = this.#connection
    this.#stop()
    if (connection !== null) connection.close()
    else this.#setStatus('closed', {})
  }

  /** This tab is done: out of the line for the lock (releasing it if held), requests rejected, channel closed. */
  #stop (): void {
    this.#closed = true
    this.#opts.window?.removeEventListener('pagehide', this.#onPageHide)
    this.#abort?.abort()
    const error = new CometClientError('closed', `the client is ${this.#status === 'auth-failed' ? 'auth-failed' : 'closed'}`)
    this.#requests.rejectAll(() => error, true)
    // Releasing the lock lets the next tab in line take over.
    this.#release?.()
    this.#channel?.close()
    this.#channel = null
  }

  /** Runs while this tab holds the lock; returning releases it. */
  async #lead (): Promise<void> {
    if (this.#closed) return
    // Whatever was sent to the previous leader will get no answer now.
    this.#failSent()
    this.#leader = this.#tab
    // Whatever the previous leader last said, this tab's own socket is only starting.
    this.#setStatus('connecting', {})
    const host: ConnectionHost = {
      status: (status, info) => {
        this.#setStatus(status, info)
        // A leader that closes says bye instead: the next leader will report its own status.
        if (!this.#closed) this.#post({ t: 'status', from: this.#tab, status, info })
        // Refused (4401) or replaced (4409): the other tabs stop too. This tab keeps the lock and keeps
        // answering hellos, so a tab opened later with the same credentials learns it at once instead of
        // trying them again; new credentials make a new group (see the lock name).
      },
      ready: (info) => {
        this.#host.ready(info)
        this.#post({ t: 'ready', from: this.#tab, info })
      },
      message: (frame) => {
        this.#post({ t: 'message', from: this.#tab, frame })
        this.#host.message(frame)
      },
      error: (error) => {
        this.#host.error(error)
        this.#post({ t: 'error', from: this.#tab, error })
      },
      since: () => this.#host.since()
    }
    const connection = new Connection(this.#opts, host)
    this.#connection = connection
    connection.setChannels(this.#union())
    this.#post({ t: 'leader', from: this.#tab })
    connection.start()
    for (const pending of this.#requests.takeQueued()) {
      clearTimeout(pending.timer)
      connection.request(pending.frame).then(pending.resolve, pending.reject)
    }
    await new Promise<void>((resolve) => { this.#release = resolve })
  }

  #onNote (note: Note): void {
    if (this.#closed || note === null || typeof note !== 'object') return
    if (this.#connection !== null) this.#onNoteAsLeader(note)
    else this.#onNoteAsFollower(note)
  }

  #onNoteAsLeader (note: Note): void {
    const connection = this.#connection
    if (connection === null) return
    switch (note.t) {
      case 'hello':
        this.#tabs.set(note.from, note.channels)
        connection.setChannels(this.#union())
        this.#post({ t: 'state', from: this.#tab, to: note.from, status: this.#status })
        return
      case 'channels':
        this.#tabs.set(note.from, note.channels)
        connection.setChannels(this.#union())
        return
      case 'bye':
        if (this.#tabs.delete(note.from)) connection.setChannels(this.#union())
        return
      case 'req':
        if (note.to !== this.#tab) return
        connection.request(note.frame).then(
          (frame) => this.#post({ t: 'res', from: this.#tab, to: note.from, rid: note.rid, frame }),
          (error: CometClientError) => this.#post({ t: 'res', from: this.#tab, to: note.from, rid: note.rid, code: error.code, message: error.message })
        )
    }
  }

  #onNoteAsFollower (note: Note): void {
    switch (note.t) {
      case 'leader':
      case 'state':
        if (note.t === 'state' && note.to !== this.#tab) return
        if (this.#leader !== note.from) {
          this.#failSent()
          this.#leader = note.from
          // A new leader does not know what this tab listens to yet.
          if (note.t === 'leader') this.#post({ t: 'channels', from: this.#tab, channels: this.#own })
          for (const pending of this.#requests.takeQueued()) this.#forward(pending, note.from)
        }
        if (note.t === 'state') {
          this.#setStatus(note.status, {})
          if (note.status === 'auth-failed' || note.status === 'closed') this.#stop()
        }
        return
      case 'bye':
        if (note.from !== this.#leader) return
        this.#leader = null
        this.#failSent()
        this.#setStatus('connecting', {})
        return
      case 'status':
        if (note.from !== this.#leader) return
        this.#setStatus(note.status, note.info)
        if (note.status === 'auth-failed' || note.status === 'closed') this.#stop()
        return
      case 'ready':
        this.#host.ready(note.info)
        return
      case 'message':
        this.#host.message(note.frame)
        return
      case 'error':
        this.#host.error(note.error)
        return
      case 'res': {
        if (note.to !== this.#tab) return
        const pending = this.#requests.settle(note.rid)
        if (pending === undefined) return
        if (note.frame !== undefined) pending.resolve(note.frame)
        else pending.reject(new CometClientError(note.code ?? 'unknown', note.message ?? 'request failed'))
      }
    }
  }

  #forward (pending: Pending, leader: string): void {
    const rid = ++this.#rid
    this.#requests.sent.set(rid, pending)
    this.#post({ t: 'req', from: this.#tab, to: leader, rid, frame: pending.frame })
  }

  #failSent (): void {
    this.#requests.rejectAll((p) => new CometClientError('disconnected', `the tab holding the connection went away before the reply to ${p.frame.type}; it may or may not have been done`), false)
  }

  #union (): Set<string> {
    const all = new Set(this.#own)
    for (const channels of this.#tabs.values()) {
      for (const channel of channels) all.add(channel)
    }
    return all
  }

  #post (note: Note): void {
    try {
      this.#channel?.postMessage(note)
    } catch {}
  }

  #setStatus (status: CometStatus, info: StatusInfo): void {
    if (this.#status === status && status !== 'connecting') return
    this.#status = status
    this.#host.status(status, info)
  }
}

/** FNV-1a, 32 bits: tells credentials apart without spelling them out. */
function secretKey (secret: ConnectionOptions['hash']): string {
  return typeof secret === 'function' ? 'fn' : fingerprint(secret ?? '')
}

function fingerprint (text: string): string {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h.toString(36)
}
