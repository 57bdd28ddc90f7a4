// A webhook receiver for fastify-comet's server events (docs/events.md): checks each request's signature,
// skips events it has seen (a retry or a takeover may send one again) and answers 204 once they are handled.
//   COMET_WEBHOOK_SECRET=… PORT=4000 node examples/webhooks/receiver.js
// and register the plugin with webhooks: [{ url: 'http://localhost:4000/comet', secret: … }].
import Fastify from 'fastify'
import { verifyWebhook } from '../../dist/index.js'

/**
 * @param {{ secret: string, handle?: (event: object) => unknown, logger?: boolean | object }} options
 */
export async function buildReceiver ({ secret, handle = () => {}, logger = false }) {
  const app = Fastify({ logger })
  // The signature covers the exact bytes: keep the body as a string and parse it after checking.
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => done(null, body))
  // A real receiver keeps this in its database, next to what handling the event changed.
  const seen = new Set()

  app.post('/comet', async (request, reply) => {
    if (!verifyWebhook(request.body, request.headers, secret)) return reply.code(401).send({ error: 'bad signature' })
    const { events } = JSON.parse(request.body)
    for (const event of events) {
      if (seen.has(event.id)) continue
      await handle(event)
      seen.add(event.id)
    }
    return reply.code(204).send()
  })
  return app
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const secret = process.env.COMET_WEBHOOK_SECRET
  if (secret === undefined) {
    process.stderr.write('Set COMET_WEBHOOK_SECRET to the secret of the webhook\n')
    process.exit(1)
  }
  const app = await buildReceiver({ secret, logger: true, handle: (event) => app.log.info({ event }, 'comet event') })
  await app.listen({ port: Number(process.env.PORT ?? 4000), host: process.env.HOST ?? 'localhost' })
}
