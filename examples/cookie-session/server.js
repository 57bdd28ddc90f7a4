// The page holds no secret at all: the app already knows its user from a signed session cookie, and the
// `authenticate` option hands that user to fastify-comet when the WebSocket opens.
// Run it: npm run build && node examples/cookie-session/server.js, then open http://localhost:3000.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import cookie from '@fastify/cookie'
import comet from '../../dist/index.js'

const app = Fastify({ logger: true })
// Register the cookie plugin first: its hook parses the cookies of the upgrade request too.
await app.register(cookie, { secret: process.env.COOKIE_SECRET ?? randomBytes(32).toString('hex') })
await app.register(comet, {
  ...(process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {}),
  // Called with the upgrade request: the user id, or null to let the auth frame decide (anonymous here).
  // A forged or tampered cookie is refused before any socket opens.
  authenticate: async (request) => {
    const raw = request.cookies.session
    if (raw === undefined) return null
    const { valid, value } = request.unsignCookie(raw)
    if (!valid) throw Object.assign(new Error('bad session cookie'), { statusCode: 401 })
    return value
  }
})

// Your login would check a password; here any name signs in. The cookie is httpOnly: no script reads it.
app.post('/login', async (request, reply) => {
  const userId = String(request.body?.userId ?? '')
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(userId)) return reply.code(400).send({ error: 'pick a name of letters, digits, _ or -' })
  reply.setCookie('session', userId, { signed: true, httpOnly: true, sameSite: 'strict', path: '/' })
  return { userId }
})

// Logging out ends the session everywhere: every socket of the user closes (4401), on every instance.
app.post('/logout', async (request, reply) => {
  const { valid, value } = request.unsignCookie(request.cookies.session ?? '')
  if (valid) await app.comet.revokeAuth(value)
  reply.clearCookie('session', { path: '/' })
  return { ok: true }
})

// Your backend would do this whenever something happens for the user (here: the signed-in user).
app.post('/push', async (request, reply) => {
  const { valid, value } = request.unsignCookie(request.cookies.session ?? '')
  if (!valid) return reply.code(401).send({ error: 'sign in first' })
  return await app.comet.sendToUser(value, 'note', { text: 'Hello at ' + new Date().toLocaleTimeString() })
})

app.get('/', async (_request, reply) => reply.type('text/html').send(page))

const page = `<!doctype html><meta charset="utf-8"><title>fastify-comet: cookie session</title>
<h1>Signed in by cookie</h1>
<form id="login"><input id="user" value="42" size="8"> <button>Sign in</button></form>
<p>Status: <span id="status">offline</span> <button id="push">Push a note to me</button> <button id="logout">Sign out</button></p>
<ol id="log"></ol>
<script type="module">
import { CometClient } from '/comet/client.js'
const $ = (id) => document.getElementById(id)
let comet
function connect () {
  comet?.close()
  // No userId, hash or token: the session cookie travels with the upgrade request.
  comet = new CometClient({ url: '/comet' })
  comet.on('status', (status) => { $('status').dataset.status = status; if (status !== 'open') $('status').textContent = status })
  comet.on('ready', (info) => { $('status').textContent = info.userId === null ? 'anonymous' : 'online as ' + info.userId })
  comet.subscribe('msg', (m) => { const li = document.createElement('li'); li.textContent = m.event + ': ' + m.data.text; $('log').prepend(li) })
}
$('login').onsubmit = async (e) => {
  e.preventDefault()
  await fetch('/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ userId: $('user').value }) })
  connect()
}
$('push').onclick = () => fetch('/push', { method: 'POST' })
$('logout').onclick = () => fetch('/logout', { method: 'POST' })
connect()
</script>`

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? 'localhost' })
