// The fastify-comet demo: sign in as any user id, get private messages, send to other users, talk in a
// room (web_room) and see who is in it (track_room); the lobby shows who comes online and goes offline.
// It signs people in without a password: a real app hands out the hash only after its own login.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto'
import { readFile } from 'node:fs/promises'
import Fastify from 'fastify'
import comet from 'fastify-comet'

const USER_ID = /^[A-Za-z0-9_-]{1,64}$/
const EVENT = /^[A-Za-z0-9_-]{1,64}$/
/** The public channel where the server announces sign-ins, and users coming online and going offline. */
const LOBBY = 'lobby'
/** The room: clients publish to it themselves (web_ channels), the server stamps each sender. */
const ROOM = 'web_room'

const escapeHtml = (text) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`)

const PAGES = {
  '/': ['index.html', 'text/html; charset=utf-8'],
  '/chat.js': ['chat.js', 'text/javascript; charset=utf-8'],
  '/style.css': ['style.css', 'text/css; charset=utf-8']
}

/**
 * @param {object} [options]
 * @param {string} [options.redis] a redis:// URL shared by every instance; in-memory when omitted
 * @param {string} [options.secret] the key each user's hash is derived from; instances that share users must share it
 * @param {string} [options.instance] a name shown on the page, to tell instances apart
 * @param {boolean | object} [options.logger]
 */
export async function buildApp (options = {}) {
  const secret = options.secret ?? randomBytes(32).toString('hex')
  const instance = options.instance ?? 'demo'
  const app = Fastify({ logger: options.logger ?? false })
  await app.register(comet, {
    ...(options.redis === undefined ? {} : { redis: options.redis }),
    // The room keeps its last messages, so a page that opens (or comes back) shows what was said.
    history: { [ROOM]: { size: 50 } }
  })

  // Server events: each reaches one instance of the cluster, once, which tells every lobby. A reload
  // (within presenceGrace) is neither.
  app.comet.on('online', async ({ userId, at }) => {
    await app.comet.publish(LOBBY, 'online', { userId, at })
  })
  app.comet.on('offline', async ({ userId, lastSeen }) => {
    await app.comet.publish(LOBBY, 'offline', { userId, lastSeen })
  })

  // A user's hash is an HMAC of their id, so every instance that knows the secret hands out the same one
  // and a second tab or a second instance does not replace the hash the first one is using.
  const hashOf = (userId) => createHmac('sha256', secret).update(userId).digest('base64url')
  const signedIn = (userId, hash) => {
    if (typeof userId !== 'string' || typeof hash !== 'string' || !USER_ID.test(userId)) return false
    const expected = Buffer.from(hashOf(userId))
    const given = Buffer.from(hash)
    return given.length === expected.length && timingSafeEqual(given, expected)
  }

  for (const [route, [file, type]] of Object.entries(PAGES)) {
    const url = new URL(`./public/${file}`, import.meta.url)
    app.get(route, async (request, reply) => {
      const body = await readFile(url, 'utf8')
      return reply.type(type).header('cache-control', 'no-cache').send(route === '/' ? body.replace('{{instance}}', escapeHtml(instance)) : body)
    })
  }

  app.post('/api/login', {
    schema: {
      body: {
        type: 'object',
        required: ['userId'],
        properties: { userId: { type: 'string', pattern: USER_ID.source } }
      }
    }
  }, async (request) => {
    const { userId } = request.body
    const hash = hashOf(userId)
    await app.comet.registerAuth(userId, hash)
    await app.comet.publish(LOBBY, 'signin', { userId, instance })
    request.log.info({ userId }, 'demo: signed in')
    return { userId, hash, instance }
  })

  app.post('/api/send', {
    schema: {
      body: {
        type: 'object',
        required: ['userId', 'hash', 'to', 'text'],
        properties: {
          userId: { type: 'string' },
          hash: { type: 'string' },
          to: { type: 'string', pattern: USER_ID.source },
          event: { type: 'string', pattern: EVENT.source, default: 'chat' },
          text: { type: 'string', minLength: 1, maxLength: 2000 }
        }
      }
    }
  }, async (request, reply) => {
    const { userId, hash, to, event, text } = request.body
    if (!signedIn(userId, hash)) return reply.code(401).send({ error: 'sign in first' })
    const result = await app.comet.sendToUser(to, event, { from: userId, text, via: instance })
    return result
  })

  return app
}
