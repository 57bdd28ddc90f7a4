import assert from 'node:assert/strict'
import { once } from 'node:events'
import WebSocket from 'ws'

export interface Frame {
  type: string
  [key: string]: any
}

/**
 * A test client over a real WebSocket: keeps every frame it receives, and lets a test wait for the next
 * one matching a predicate.
 */
export class TestClient {
  readonly ws: WebSocket
  readonly frames: Frame[] = []
  closeCode: number | null = null
  #waiters: Array<{ match: (f: Frame) => boolean, resolve: (f: Frame) => void, from: number }> = []
  readonly closed: Promise<number>

  constructor (url: string, options: WebSocket.ClientOptions = {}) {
    this.ws = new WebSocket(url, options)
    this.ws.on('message', (data) => {
      const frame = JSON.parse(data.toString()) as Frame
      this.frames.push(frame)
      this.#waiters = this.#waiters.filter((w) => {
        if (!w.match(frame)) return true
        w.resolve(frame)
        return false
      })
    })
    this.ws.on('error', () => {})
    this.closed = new Promise((resolve) => this.ws.on('close', (code) => {
      this.closeCode = code
      resolve(code)
    }))
  }

  static async open (url: string, options?: WebSocket.ClientOptions): Promise<TestClient> {
    const client = new TestClient(url, options)
    await once(client.ws, 'open')
    return client
  }

  send (frame: unknown): void {
    this.ws.send(typeof frame === 'string' ? frame : JSON.stringify(frame))
  }

  /** The first frame (already received or coming) that matches. */
  next (match: (f: Frame) => boolean, timeout = 5000): Promise<Frame> {
    const seen = this.frames.find(match)
    if (seen !== undefined) return Promise.resolve(seen)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`timed out waiting for a frame; got ${JSON.stringify(this.frames.slice(-5))}`)), timeout)
      this.#waiters.push({ match, resolve: (f) => { clearTimeout(timer); resolve(f) }, from: this.frames.length })
    })
  }

  type (type: string, timeout?: number): Promise<Frame> {
    return this.next((f) => f.type === type, timeout)
  }

  messages (channel = 'msg'): Frame[] {
    return this.frames.filter((f) => f.type === 'message' && f.channel === channel)
  }

  async auth (userId: string, hash: string, extra: Record<string, unknown> = {}): Promise<Frame> {
    this.send({ type: 'auth', userId, hash, ...extra })
    return await Promise.race([this.type('ready'), this.closed.then((code) => { throw new Error(`closed with ${code} instead of ready`) })])
  }

  async close (): Promise<void> {
    if (this.ws.readyState === WebSocket.CLOSED) return
    this.ws.close()
    await this.closed
  }
}

/** Resolves when `check` returns true, polling; rejects with `what` after `timeout`. */
export async function eventually (check: () => boolean | Promise<boolean>, what: string, timeout = 5000): Promise<void> {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out: ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

/**
 * Where a device that got `ready` and then `messages` resumes from, as CometClient does: the last id it
 * got, or the `last` of `ready` once every stored message it announced has arrived.
 */
export function resumeFrom (ready: Frame, messages: Frame[], since: string | undefined): string | undefined {
  const last = ready['last'] as string
  const stored = messages.filter((m) => BigInt(m.id) <= BigInt(last)).length
  const newest = messages.at(-1)?.id ?? since
  if (stored < ready['queued']) return newest
  return newest === undefined || BigInt(newest) < BigInt(last) ? last : newest
}

/** Opens a socket and reports how the upgrade ended: 'open' or the HTTP status that refused it. */
export async function upgrade (url: string, options: WebSocket.ClientOptions = {}): Promise<'open' | number> {
  const ws = new WebSocket(url, options)
  const status = await new Promise<'open' | number>((resolve) => {
    ws.on('open', () => resolve('open'))
    ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0))
    ws.on('error', () => {})
  })
  ws.terminate()
  return status
}

/**
 * After a Redis failover: every accepted message once, in id order; besides them at most one per failed
 * send (a send whose reply was lost with the primary may have run, and replicated, all the same).
 */
export function deliveredOnce (got: string[], accepted: string[], failed: number, who: string): void {
  assert.equal(new Set(got).size, got.length, `${who}: each message once`)
  assert.ok(got.every((id, n) => n === 0 || Number(id) > Number(got[n - 1])), `${who}: in order`)
  assert.deepEqual(accepted.filter((id) => !got.includes(id)), [], `${who}: every accepted message`)
  assert.ok(got.length - accepted.length <= failed, `${who}: ${got.length - accepted.length} more than accepted, ${failed} sends failed`)
}
