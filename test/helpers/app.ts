import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import comet from '../../lib/index.ts'
import type { CometOptions } from '../../lib/index.ts'

export interface TestApp {
  app: FastifyInstance
  url: string
}

/** A real Fastify instance with the plugin, listening on a free loopback port. */
export async function startApp (options: CometOptions = {}, listen = true): Promise<TestApp> {
  const app = Fastify({ logger: false })
  await app.register(comet, options)
  if (!listen) {
    await app.ready()
    return { app, url: '' }
  }
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  return { app, url: `ws://127.0.0.1:${port}/comet` }
}

export const HASH = 'a-long-enough-secret-hash'
