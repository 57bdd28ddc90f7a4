import { readFile } from 'node:fs/promises'
import type { FastifyInstance } from 'fastify'

/** Serves the browser client bundle, built to dist/client.js, next to the socket route. */
export function serveClient (app: FastifyInstance, route: string): void {
  const candidates = [new URL('./client.js', import.meta.url), new URL('../dist/client.js', import.meta.url)]
  let bundle: Promise<string | null> | undefined
  async function load (): Promise<string | null> {
    for (const file of candidates) {
      try {
        return await readFile(file, 'utf8')
      } catch {}
    }
    return null
  }
  app.get(route, async (_request, reply) => {
    bundle ??= load()
    const code = await bundle
    if (code === null) return await reply.code(404).send({ error: 'client bundle not built: run npm run build' })
    return await reply.type('text/javascript; charset=utf-8').header('cache-control', 'public, max-age=300').send(code)
  })
}
