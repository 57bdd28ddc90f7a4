// npm start: one instance on the in-memory store. With REDIS_URL, instances share users and messages.
import { buildApp } from './app.js'

const port = Number(process.env.PORT ?? 3000)
const host = process.env.HOST ?? 'localhost'
const app = await buildApp({
  redis: process.env.REDIS_URL,
  secret: process.env.COMET_DEMO_SECRET,
  instance: process.env.INSTANCE ?? `:${port}`,
  logger: { level: process.env.LOG_LEVEL ?? 'info' }
})
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.once(signal, () => {
    app.close().then(() => process.exit(0), (err) => {
      app.log.error({ err }, 'demo: close failed')
      process.exit(1)
    })
  })
}
await app.listen({ port, host })
app.log.info(`fastify-comet demo on ${app.listeningOrigin} (${process.env.REDIS_URL === undefined ? 'in-memory store' : 'Redis at REDIS_URL'})`)
