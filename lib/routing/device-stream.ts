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
 *   either written by the socket or given back when it closes, unless a ready socket wrote it already
 *   (`covered`) or another socket of the user still holds it.
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

interface Held {
  message: Routed
  /** A ready socket of this instance wrote it when it arrived. */
  covered: boolean
}

type Phase = 'syncing' | 'ready' | 'closed'

export class DeviceStream {
  readonly sink: DeviceSink
  #phase: Phase = 'syncing'
  /** The newest id this device has (written, or known to precede what it will be written). */
  #lastId = 0
  /** Ready, but holding live messages while a routing gap is caught up (Hub.resync). */
  #holding = false
  // Created when first needed: memory per idle socket is what scales.
  #inbox: Held[] | undefined
  /** The queue the attach took, until the socket owns it: given back if it closes first. */
  #taken: Routed[] | undefined
  /** The device whose attach marker is awaited, and what to tell when it arrives (or cannot). */
  #marker: { device: string, arrived: (ok: boolean) => void } | undefined
  /** Routing was interrupted while syncing: live messages may have been missed. */
  #gap = false

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
    this.#inbox ??= []
    this.#inbox.push({ message, covered })
    return true
  }

  holds (id: number): boolean {
    return this.#inbox?.some((held) => held.message.id === id) ?? false
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
    this.#taken = queued
    this.#lastId = since ?? 0
  }

  /**
   * Once the marker is back: what this device owns, to be flushed. `queued` counts those at or below
   * `synced` (what `ready` announces).
   */
  own (missed: Routed[], synced: number): { backlog: Routed[], queued: number } {
    const stored = new Map<number, Routed>()
    for (const m of (this.#taken ?? []).concat(missed)) if (m.id > this.#lastId) stored.set(m.id, m)
    this.#taken = undefined
    const live: Routed[] = []
    for (const { message, covered } of this.#takeInbox()) {
      if (message.id > synced) live.push(message)
      else if (!covered && message.id > this.#lastId) stored.set(message.id, message)
    }
    return { backlog: [...stored.values(), ...live], queued: stored.size }
  }

  /**
   * Writes a backlog merged by id with live messages that arrive meanwhile, paced by the socket. Ids at or
   * below the last written (so up to `since`), and after the backlog up to `synced`, are skipped. Returns
   * what could not be written because the socket closed.
   */
  async flush (backlog: Routed[], synced = 0): Promise<Routed[]> {
    let pending = backlog
    do {
      pending.sort((a, b) => a.id - b.id)
      for (let i = 0; i < pending.length; i++) {
        const message = pending[i] as Routed
        if (message.id <= this.#lastId) continue
        if (!this.sink.open) return pending.slice(i)
        const written = this.sink.writeStored(message.frame)
        if (!(written === true || await written)) return pending.slice(i)
        this.#lastId = message.id
      }
      if (synced > this.#lastId) this.#lastId = synced
      pending = this.#takeInbox().map((held) => held.message)
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

  /** Holds live messages while a routing gap is caught up (Hub.resync); false if not ready. */
  startHolding (): boolean {
    if (this.#phase !== 'ready' || this.#holding) return false
    this.#holding = true
    return true
  }

  /** Writes the catch-up merged by id with what was held, then takes live again; returns what could not be written. */
  async release (stored: Routed[]): Promise<Routed[]> {
    if (this.#phase !== 'ready') {
      this.#holding = false
      return []
    }
    const unsent = await this.flush(stored.concat(this.#takeInbox().map((held) => held.message)))
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
    const owed = new Map<number, Routed>()
    for (const m of this.#taken ?? []) owed.set(m.id, m)
    this.#taken = undefined
    for (const { message, covered } of this.#takeInbox()) {
      if (!covered && message.id > this.#lastId) owed.set(message.id, message)
    }
    return [...owed.values()]
  }

  #takeInbox (): Held[] {
    const held = this.#inbox ?? []
    this.#inbox = undefined
    return held
  }
}
