import { CometClientError } from './errors.ts'
import type { RequestFrame, ServerFrame } from './types.ts'

/** A request waiting for its reply, rejected with `timeout` if none comes in time. */
export interface Pending {
  frame: RequestFrame
  resolve: (frame: ServerFrame) => void
  reject: (error: Error) => void
  timer: ReturnType<typeof setTimeout>
}

/**
 * The requests of one link (a socket, or the leader tab): queued until they can go out, then sent under a
 * number (a frame's ref, a note's rid) until their reply settles them.
 */
export class Requests {
  queued: Pending[] = []
  readonly sent = new Map<number, Pending>()

  /**
   * A new request, rejected at once with `closed` when that is set; else sent by `send` when given, or
   * queued. On timeout it is dropped from wherever it waits, then rejected.
   */
  add (frame: RequestFrame, timeout: number, closed: string | null, send: ((p: Pending) => void) | null): Promise<ServerFrame> {
    return new Promise((resolve, reject) => {
      if (closed !== null) {
        reject(new CometClientError('closed', closed))
        return
      }
      const p: Pending = {
        frame,
        resolve,
        reject,
        timer: setTimeout(() => {
          this.queued = this.queued.filter((q) => q !== p)
          for (const [n, q] of this.sent) if (q === p) this.sent.delete(n)
          reject(new CometClientError('timeout', `no reply to ${frame.type} within ${timeout} ms`))
        }, timeout)
      }
      if (send !== null) send(p)
      else this.queued.push(p)
    })
  }

  /** The queued requests, to send now; none stays queued. */
  takeQueued (): Pending[] {
    const queued = this.queued
    this.queued = []
    return queued
  }

  /** The sent request with this number, settled: no longer waiting, its timer stopped. */
  settle (n: number): Pending | undefined {
    const p = this.sent.get(n)
    if (p === undefined) return undefined
    this.sent.delete(n)
    clearTimeout(p.timer)
    return p
  }

  /** Rejects every sent request, and the queued ones too with `queued`. */
  rejectAll (error: (p: Pending) => CometClientError, queued: boolean): void {
    for (const p of queued ? [...this.sent.values(), ...this.takeQueued()] : this.sent.values()) {
      clearTimeout(p.timer)
      p.reject(error(p))
    }
    this.sent.clear()
  }
}
