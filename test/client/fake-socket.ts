import type { WebSocketConstructorLike } from '../../lib/client/index.ts'

export interface Frame {
  type: string
  [key: string]: any
}

/** The server end of a socket the client opened: what the client sent, and buttons for what the server does. */
export class FakeSocket {
  readyState = 0
  readonly sent: Frame[] = []
  closedWith: { code: number | undefined, reason: string | undefined } | null = null
  onopen: ((ev: unknown) => void) | null = null
  onmessage: ((ev: { data: unknown }) => void) | null = null
  onclose: ((ev: { code: number, reason: string }) => void) | null = null
  onerror: ((ev: unknown) => void) | null = null
  readonly url: string

  constructor (url: string) {
    this.url = url
  }

  send (data: string): void {
    if (this.readyState !== 1) throw new Error('send on a socket that is not open')
    this.sent.push(JSON.parse(data) as Frame)
  }

  close (code?: number, reason?: string): void {
    this.closedWith = { code, reason }
    this.readyState = 3
  }

  /** The handshake completed. */
  open (): void {
    this.readyState = 1
    this.onopen?.({})
  }

  receive (frame: object | string): void {
    this.onmessage?.({ data: typeof frame === 'string' ? frame : JSON.stringify(frame) })
  }

  /** The server (or the network) closed the socket. */
  drop (code = 1006): void {
    this.readyState = 3
    this.onclose?.({ code, reason: '' })
  }

  /** Open, answer the auth frame with `ready`, and return the auth frame. */
  accept (userId: string | null = '42', extra: object = {}): Frame {
    this.open()
    const auth = this.sent[0]
    if (auth?.type !== 'auth') throw new Error(`expected an auth frame first, got ${JSON.stringify(auth)}`)
    this.receive({ type: 'ready', userId, queued: 0, dropped: 0, ref: auth['ref'], ...extra })
    return auth
  }

  /** Frames of one type sent after the auth frame. */
  frames (type: string): Frame[] {
    return this.sent.filter((f) => f.type === type)
  }
}

/** A WebSocket class whose instances the test can drive; `sockets` lists them in creation order. */
export function fakeServer (): { WebSocket: WebSocketConstructorLike, sockets: FakeSocket[], last (): FakeSocket } {
  const sockets: FakeSocket[] = []
  class WebSocket extends FakeSocket {
    constructor (url: string) {
      super(url)
      sockets.push(this)
    }
  }
  return {
    WebSocket: WebSocket as unknown as WebSocketConstructorLike,
    sockets,
    last () {
      const socket = sockets.at(-1)
      if (socket === undefined) throw new Error('no socket was opened')
      return socket
    }
  }
}

export function privateMessage (id: string | number, event = 'event1', data: unknown = { n: id }): Frame {
  return { type: 'message', channel: 'msg', event, data, id: String(id) }
}
