import { connect, createServer } from 'node:net'
import type { Server, Socket } from 'node:net'
import { once } from 'node:events'

/**
 * A TCP proxy in front of a real redis-server that can make subscriber connections go deaf: Redis still
 * counts them as subscribed, but nothing it sends reaches the client, and no error is raised. This is
 * how a failover or a broken middlebox looks from the app.
 */
export class DeafeningProxy {
  readonly server: Server
  port = 0
  #links: Array<{ client: Socket, upstream: Socket, subscriber: boolean, deaf: boolean }> = []

  constructor (private readonly redisPort: number) {
    this.server = createServer((client) => {
      const upstream = connect(this.redisPort, '127.0.0.1')
      const link = { client, upstream, subscriber: false, deaf: false }
      this.#links.push(link)
      client.on('data', (data) => {
        // A (S)SUBSCRIBE command, not the word inside a script's text.
        if (/\r\n\$\d+\r\ns?subscribe\r\n/i.test(data.toString('latin1'))) link.subscriber = true
        upstream.write(data)
      })
      upstream.on('data', (data) => { if (!link.deaf) client.write(data) })
      const end = (): void => { client.destroy(); upstream.destroy() }
      client.on('close', end).on('error', end)
      upstream.on('close', end).on('error', end)
    })
  }

  async listen (): Promise<void> {
    this.server.listen(0, '127.0.0.1')
    await once(this.server, 'listening')
    this.port = (this.server.address() as { port: number }).port
  }

  /** Silently drops everything Redis sends to subscriber connections open now. */
  deafenSubscribers (): number {
    const subs = this.#links.filter((l) => l.subscriber && !l.client.destroyed)
    for (const link of subs) link.deaf = true
    return subs.length
  }

  /** Deafened connections still open: 0 once the app has given up on every one of them. */
  deafOpen (): number {
    return this.#links.filter((l) => l.deaf && !l.client.destroyed).length
  }

  async close (): Promise<void> {
    for (const { client, upstream } of this.#links) {
      client.destroy()
      upstream.destroy()
    }
    await new Promise((resolve) => this.server.close(resolve))
  }
}
