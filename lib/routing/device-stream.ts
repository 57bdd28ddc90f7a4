import type { Routed } from '../store/types.ts'

/*
 * The private messages of one authenticated socket: what it holds, what it owns, what it wrote, and what
 * it must give back. Every delivery decision for a device is made here; the hub only routes, the
 * connection only handles frames.
 *
 * The invariant: every message the store routed here is, in the end, written exactly once by some socket
 * or back in the user's queue.
 * - `take` returns true only when this socket wrote the message (or wrote it earlier): a message no
 *   ready socket took and no socket holds is requeued by the hub.
 * - A syncing socket (or a ready one while a routing gap is caught up) only holds. A held message is
 *   either written by the socket or given back when it closes, unless a ready socket here wrote it
 *   already (`covered`), or another socket of the user still holds it or wrote it. What a closed socket
 *   owed goes to a socket of the user that is still syncing, with its queue, or back to the queue.
 * - A socket decides what it owns only once its attach marker has come back through routing: the store
 *   publishes it on the user's routing channel right after the attach, so every message sent before the
 *   attach has passed through the hub by then. It owns the stored messages the attach returned, every
 *   held message sent after the attach, and each held one sent before it that no ready socket wrote
 *   (published while an earlier socket of the user was here: nobody else will write it).
 */

/** The socket under a stream: what delivery needs of it. */
export interface DeviceSink {
  /** The device id, once recorded in the store. */
  readonly device: string | null
  /** Whether a frame written now reaches the client. */
  readonly open: boolean
  /** Writes a live message's prebuilt frame unless the client is too slow (it is then cut): whether written. */
  write (wire: Buffer): boolean
  /** Writes a stored message, paced by the socket: whether written (false: the socket closed). */
  writeStored (frame: Buffer): boolean | Promise<boolean>
  close (code: number, reason: string): void
}

/**
 * Messages that need no giving back when a socket cannot write them: live ones a socket of this instance
 * wrote (every socket holding a live message holds the same object), and those an attach replayed after
 * the device's `since` (they stay in the resume log, for its next reconnect with `since`).
 */
const homed = new WeakSet<Routed>()

type Phase = 'syncing' | 'ready' | 'closed'

export class DeviceStream {
  readonly sink: DeviceSink
  #phase: Phase = 'syncing'
  /** The newest id this device has (written, or known to precede what it will be written). */
  #lastId = 0
  /** The user's last id at its attach: every later message is routed here live. */
  #from = Infinity
  /** Ready, but holding live messages while a routing gap is caught up (Hub.resync). */
  #holding = false
  // Created when first needed: memory per idle socket is what scales.
  #inbox: Routed[] | undefined
  /** The queue the attach took, and what closed sockets handed over, until owned: given back if it closes first. */
  #taken: Routed[] | undefined
  /** Decided what it owns (own): from then on it takes nothing over. */
  #owned = false
  /** The device whose attach marker is awaited, and what to tell when it arrives (or cannot). */
  #marker: { device: string, arrived: (ok: boolean) => void } | undefined
  /** Routing was interrupted while syncing: live messages may have been missed. */
  #gap = false
  /** The user's sockets on this instance (this one included), told what this one writes from a backlog. */
  #peers: readonly DeviceStream[] | undefined

  constructor (sink: DeviceSink) {
    this.sink = sink
  }

  /** The id up to which this device has every private message: where a catch-up starts. */
  get synced (): number { return this.#lastId }
  /** Whether live messages are written as they come (not syncing, not closed). */
  get live (): boolean { return this.#phase === 'ready' }
  /** Whether a routing gap happened while this socket was syncing. */
  get gap (): boolean { return this.#gap }

  /** Writes a live message if ready; true when this socket has it now. */
  take (message: Routed, wire: Buffer): boolean {
    if (this.#phase !== 'ready' || this.#holding || !this.sink.open) return false
    // Only a message delivered again after a routing gap can be this old: it was written.
    if (message.id <= this.#lastId) return true
    if (!this.sink.write(wire)) return false
    this.#lastId = message.id
    return true
  }

  /** Holds a live message while syncing or catching up; `covered`: a ready socket here wrote it. */
  hold (message: Routed, covered: boolean): boolean {
    if (this.#phase === 'closed' || (this.#phase === 'ready' && !this.#holding)) return false
    if (covered) homed.add(message)
    this.#inbox ??= []
    this.#inbox.push(message)
    return true
  }

  /** Joined the user's route: `peers` are its sockets (the route's own array, kept up to date). */
  joined (peers: readonly DeviceStream[]): void {
    this.#peers = peers
  }

  /** Another socket here wrote this id (from its own copy): what this one holds of it is no longer owed. */
  #coveredBy (id: number): void {
    for (const held of this.#inbox ?? []) if (held.id === id) homed.add(held)
    for (const queued of this.#taken ?? []) if (queued.id === id) homed.add(queued)
  }

  holds (id: number): boolean {
    return this.#inbox?.some((held) => held.id === id) ?? false
  }

  /**
   * Whether this socket wrote `id` or will: sent after its attach, so routed here live and written in
   * order, and either past it or still open (a live copy on its way is its to write, or to give back).
   */
  covers (id: number): boolean {
    return id > this.#from && (id <= this.#lastId || (this.#phase !== 'closed' && this.sink.open && !this.#gap))
  }

  /** Before the attach: resolves true once its marker came back through routing, false if it cannot. */
  expect (device: string): Promise<boolean> {
    return new Promise((resolve) => { this.#marker = { device, arrived: resolve } })
  }

  /** The attach marker of `device` arrived: everything sent before that attach has been through here. */
  marked (device: string): void {
    if (this.#marker?.device !== device) return
    this.#marker.arrived(true)
    this.#marker = undefined
  }

  /** The attach took the queue; the device has everything up to `since`. */
  attached (queued: Routed[], since: number | null): void {
    this.#taken = this.#taken === undefined ? queued : this.#taken.concat(queued)
    this.#lastId = since ?? 0
  }

  /**
   * Takes over what a closed socket of the user owed, as part of its queue, while it has not yet decided
   * what it owns: their live copies may still be on their way here. False once it has.
   */
  adopt (messages: Routed[]): boolean {
    if (this.#phase !== 'syncing' || this.#owned) return false
    this.#taken = this.#taken === undefined ? messages : this.#taken.concat(messages)
    return true
  }

  /**
   * Once the marker is back: what this device owns, to be flushed. `queued` counts those at or below
   * `synced` (what `ready` announces).
   */
  own (missed: Routed[], synced: number): { backlog: Routed[], queued: number } {
    for (const m of missed) homed.add(m)
    // A message both missed and queued is owed as queued; one also held is written as the live object,
    // so that the other sockets holding it see it written.
    const stored = byId(missed, this.#taken ?? [])
    this.#taken = undefined
    this.#owned = true
    this.#from = synced
    const live: Routed[] = []
    for (const message of this.#takeInbox()) {
      if (message.id > synced) live.push(message)
      else if (stored.has(message.id) || !homed.has(message)) stored.set(message.id, message)
    }
    for (const id of stored.keys()) if (id <= this.#lastId) stored.delete(id)
    return { backlog: [...stored.values(), ...live], queued: stored.size }
  }

  /**
   * Writes a backlog merged by id with live messages that arrive meanwhile, paced by the socket. Ids at or
   * below the last written (so up to `since`), and after the backlog up to `synced`, are skipped. Returns
   * what the socket closed before writing and must not vanish (see homed).
   */
  async flush (backlog: Routed[], synced = 0): Promise<Routed[]> {
    let pending = backlog
    do {
      pending.sort((a, b) => a.id - b.id)
      for (let i = 0; i < pending.length; i++) {
        const message = pending[i] as Routed
        if (message.id <= this.#lastId) continue
        if (!this.sink.open) return owed(pending.slice(i))
        const written = this.sink.writeStored(message.frame)
        if (!(written === true || await written)) return owed(pending.slice(i))
        homed.add(message)
        if (this.#peers !== undefined) for (const peer of this.#peers) if (peer !== this) peer.#coveredBy(message.id)
        this.#lastId = message.id
      }
      if (synced > this.#lastId) this.#lastId = synced
      pending = this.#takeInbox()
    } while (pending.length > 0)
    return []
  }

  /** Live from now on (the backlog is written). */
  ready (): void {
    if (this.#phase === 'syncing') this.#phase = 'ready'
  }

  /** Routing was interrupted: a syncing socket cannot know what it missed (a ready one is caught up). */
  interrupted (): void {
    if (this.#phase !== 'syncing') return
    this.#gap = true
    this.#marker?.arrived(false)
    this.#marker = undefined
  }

  /** Holds live messages while a routing gap is caught up (Hub.resync); false if not ready and open. */
  startHolding (): boolean {
    if (this.#phase !== 'ready' || this.#holding || !this.sink.open) return false
    this.#holding = true
    return true
  }

  /**
   * Writes the catch-up merged by id with what was held, then takes live again. Returns what it could not
   * write; the queue the catch-up took is given back by the hub unless a socket wrote it (see written).
   */
  async release (queued: Routed[], missed: Routed[]): Promise<Routed[]> {
    if (this.#phase !== 'ready') {
      this.#holding = false
      return []
    }
    const unsent = await this.flush([...byId(missed, queued, this.#takeInbox()).values()])
    this.#holding = false
    return unsent
  }

  /**
   * The socket closed. Returns what must not vanish: the queue it took and did not yet own, and what it
   * held that no ready socket wrote and it did not write.
   */
  close (): Routed[] {
    this.#phase = 'closed'
    this.#holding = false
    this.#marker?.arrived(false)
    this.#marker = undefined
    const owing = new Map<number, Routed>()
    for (const m of owed(this.#taken ?? [])) owing.set(m.id, m)
    this.#taken = undefined
    for (const message of owed(this.#takeInbox())) if (message.id > this.#lastId) owing.set(message.id, message)
    return [...owing.values()]
  }

  #takeInbox (): Routed[] {
    const held = this.#inbox ?? []
    this.#inbox = undefined
    return held
  }
}

/** The messages by id; of two with one id, the later list's. */
function byId (...lists: Routed[][]): Map<number, Routed> {
  const all = new Map<number, Routed>()
  for (const list of lists) for (const m of list) all.set(m.id, m)
  return all
}

/** Whether a socket of this instance wrote the message (or it needs no giving back). */
export function written (message: Routed): boolean {
  return homed.has(message)
}

function owed (messages: Routed[]): Routed[] {
  return messages.filter((m) => !homed.has(m))
}
