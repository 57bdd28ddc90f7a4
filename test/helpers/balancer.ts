import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { once } from 'node:events'

/**
 * A TCP load balancer on loopback: each new connection goes to the next backend that accepts it, the way
 * a real balancer takes a dead instance out of rotation. No sticky sessions.
 */
export class Balancer {
  readonly server: Server
  port = 0
  #next = 0
  #sockets = new Set<Socket>()

  constructor (private readonly backends: number[]) {
    this.server = createServer((client) => {
      this.#track(client)
      client.pause()
      this.#pipe(client, 0)
    })
  }

  #pipe (client: Socket, tried: number): void {
    if (tried >= this.backends.length) {
      client.destroy()
      return
    }
    const port = this.backends[this.#next++ % this.backends.length] as number
    const upstream = connect(port, '127.0.0.1')
    this.#track(upstream)
    upstream.once('error', () => this.#pipe(client, tried + 1))
    upstream.once('connect', () => {
      upstream.removeAllListeners('error')
      client.pipe(upstream).pipe(client)
      client.resume()
      const end = (): void => { client.destroy(); upstream.destroy() }
      client.on('close', end).on('error', end)
      upstream.on('close', end).on('error', end)
    })
  }

  #track (socket: Socket): void {
    this.#sockets.add(socket)
    socket.on('close', () => this.#sockets.delete(socket))
  }

  async listen (): Promise<void> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.port = (this.server.address() as { port: number }).port
  }

  async close (): Promise<void> {
    for (const socket of this.#sockets) socket.destroy()
    await new Promise((resolve) => this.server.close(resolve))
  }
}
