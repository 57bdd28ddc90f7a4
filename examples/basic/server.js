// The smallest app: `npm start`, open http://localhost:3000, and watch pushes arrive.
// In-memory store (one instance); pass { redis: process.env.REDIS_URL } to share state between instances.
import { randomBytes } from 'node:crypto'
import Fastify from 'fastify'
import comet from '../../dist/index.js'

const app = Fastify({ logger: true })
await app.register(comet, process.env.REDIS_URL ? { redis: process.env.REDIS_URL } : {})

// Your login would do this: register a fresh secret for the user and hand it to their page.
app.get('/login/:userId', async (request) => {
  const { userId } = request.params
  const hash = randomBytes(24).toString('base64url')
  await app.comet.registerAuth(userId, hash, { ttl: 3_600_000 })
  return { userId, hash }
})

// Your backend would do this whenever something happens for the user.
app.post('/send/:userId', async (request) => {
  return await app.comet.sendToUser(request.params.userId, 'note', request.body ?? {})
})

app.get('/', async (_request, reply) => reply.type('text/html').send(page))

const page = `<!doctype html><meta charset="utf-8"><title>fastify-comet</title>
<h1>fastify-comet</h1>
<p>User <input id="user" value="42" size="6"> <button id="connect">Connect</button> <span id="status">offline</span></p>
<p><button id="push">Push a message to this user from the server</button></p>
<ol id="log"></ol>
<script type="module">
const $ = (id) => document.getElementById(id)
const log = (text) => { const li = document.createElement('li'); li.textContent = text; $('log').prepend(li) }
$('connect').onclick = async () => {
  const { userId, hash } = await (await fetch('/login/' + $('user').value)).json()
  const ws = new WebSocket(location.origin.replace('http', 'ws') + '/comet', 'comet.v1')
  ws.onopen = () => ws.send(JSON.stringify({ type: 'auth', userId, hash }))
  ws.onclose = (e) => { $('status').textContent = 'closed (' + e.code + ')' }
  ws.onmessage = (e) => {
    const frame = JSON.parse(e.data)
    if (frame.type === 'ready') $('status').textContent = 'online as ' + frame.userId
    if (frame.type === 'message') log(frame.event + ' #' + frame.id + ': ' + JSON.stringify(frame.data))
  }
}
$('push').onclick = () => fetch('/send/' + $('user').value, {
  method: 'POST', headers: { 'content-type': 'application/json' },
  body: JSON.stringify({ text: 'Hello at ' + new Date().toLocaleTimeString() })
})
</script>`

await app.listen({ port: Number(process.env.PORT ?? 3000), host: process.env.HOST ?? 'localhost' })
