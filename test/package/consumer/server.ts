// A strict TypeScript app using the packed package: compiled under each module resolution, never run.
import Fastify from 'fastify'
import comet, { errors, PROTOCOL } from 'fastify-comet'
import type { CometOptions, SendResult } from 'fastify-comet'
import { CometClient, CometClientError } from 'fastify-comet/client'
import { CometEmitter } from 'fastify-comet/emitter'
import type { EmitterOptions } from 'fastify-comet/emitter'
import WebSocket from 'ws'

declare module 'fastify-comet' {
  interface CometEvents {
    invoice_paid: { invoice: string }
  }
}

export async function main (): Promise<void> {
  const app = Fastify()
  const options: CometOptions = { prefix: '/rt', logLevel: 'warn', keyPrefix: 'app:' }
  await app.register(comet, options)
  await app.register(comet, { redis: 'redis://127.0.0.1:6379', history: { news: { size: 10 } } })

  const sent: SendResult = await app.comet.sendToUser(42, 'invoice_paid', { invoice: 'A-17' })
  // @ts-expect-error the data of a declared event is checked
  await app.comet.sendToUser(42, 'invoice_paid', { invoice: 17 })
  // @ts-expect-error and publish checks it too
  await app.comet.publish('news', 'invoice_paid', { total: 1 })
  await app.comet.publish('news', 'anything_else', { any: 'json' })
  console.log(sent.id, PROTOCOL)

  // The error classes are typed, not `any`.
  const code: 'FST_ERR_COMET_UNAVAILABLE' = new errors.UNAVAILABLE('down').code
  // @ts-expect-error a code is not a number
  const wrong: number = new errors.UNAVAILABLE('down').code
  console.log(code, wrong)

  const client = new CometClient({ url: 'ws://127.0.0.1:3000/rt/comet', userId: 42, hash: 'a-secret-of-16-chars', WebSocket })
  client.subscribe('msg.invoice_paid', (m) => { const invoice: string = m.data.invoice; console.log(invoice) })
  // @ts-expect-error the client knows the event's data
  client.subscribe('msg.invoice_paid', (m) => { const invoice: number = m.data.invoice; console.log(invoice) })
  client.subscribe('news', (m) => { const data: unknown = m.data; console.log(data) })
  console.log(new CometClientError('timeout', 'x').code)

  // A worker's emitter: the same API, the same declared events.
  const emitterOptions: EmitterOptions = { redis: 'redis://127.0.0.1:6379', keyPrefix: 'app:' }
  const emitter = new CometEmitter(emitterOptions)
  const fromWorker: SendResult = await emitter.sendToUser(42, 'invoice_paid', { invoice: 'A-17' }, { idempotencyKey: 'inv-A-17' })
  // @ts-expect-error the emitter checks declared events too
  await emitter.sendToUser(42, 'invoice_paid', { invoice: 17 })
  console.log(fromWorker.id)
  await emitter.close()
}
