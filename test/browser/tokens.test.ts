import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { after, before, test } from 'node:test'
import Fastify from 'fastify'
import { createSigner } from 'fast-jwt'
import type { Browser } from 'playwright-core'
import WebSocket from 'ws'
import comet from '../../lib/index.ts'
import { build, launch } from './chromium.ts'

// Tokens and the upgrade hook in headless Chromium, with the client bundle the plugin serves.

const SECRET = 'a-browser-test-secret-32-bytes!!'
let browser: Browser

/** What the token page records. */
interface PageState { statuses: Array<[string, number | null]>, got: unknown[] }

before(async () => {
  build()
  browser = await launch()
})

after(async () => {
  await browser?.close()
})

test('a page with a 3 s token stays connected for 10 s and receives a message sent at 8 s', async (t) => {
  const app = Fastify({ logger: false })
  await app.register(comet, { jwt: { secret: SECRET } })
  const sign = createSigner({ key: SECRET, expiresIn: 3000 })
  let issued = 0
  app.get('/token', async () => { issued++; return sign({ sub: 'page' }) })
  app.get('/', async (_request, reply) => reply.type('text/html').send(`<!doctype html><script type="module">
import { CometClient } from '/comet/client.js'
window.statuses = []
window.got = []
const comet = new CometClient({ url: '/comet', token: async () => (await fetch('/token')).text() })
comet.on('status', (status, info) => window.statuses.push([status, info.code ?? null]))
comet.subscribe('msg', (m) => window.got.push(m.data))
</script>`))
  await app.listen({ port: 0, host: '127.0.0.1' })
  t.after(() => app.close())
  const { port } = app.server.address() as { port: number }
  const page = await browser.newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`http://127.0.0.1:${port}/`)
  await page.waitForFunction(() => (globalThis as unknown as PageState).statuses.some(([s]) => s === 'open'), undefined, { timeout: 15_000 })
  const opened = Date.now()
  await new Promise((resolve) => setTimeout(resolve, 8000 - (Date.now() - opened)))
  await app.comet.sendToUser('page', 'at8', { n: 8 })
  await new Promise((resolve) => setTimeout(resolve, 10_000 - (Date.now() - opened)))
  const state = await page.evaluate(() => { const { statuses, got } = globalThis as unknown as PageState; return { statuses, got } })
  assert.deepEqual(state.got, [{ n: 8 }])
  assert.deepEqual(state.statuses, [['open', null]], 'connected throughout: never dropped')
  assert.ok(issued >= 4, `the page refreshed its token before each expiry (${issued} tokens)`)
  assert.deepEqual(errors, [])
})

test('the cookie-session example: signed in by cookie, the page holds no secret, pushes arrive', async (t) => {
  const child = spawn(process.execPath, [new URL('../../examples/cookie-session/server.js', import.meta.url).pathname], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  t.after(() => child.kill('SIGKILL'))
  let origin = ''
  for await (const line of createInterface({ input: child.stdout as Readable })) {
    const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
    if (match?.[1] !== undefined) {
      origin = match[1]
      break
    }
  }
  // Keep reading its log, so a full pipe never blocks the server.
  child.stdout?.resume()
  const page = await (await browser.newContext()).newPage()
  const errors: string[] = []
  page.on('pageerror', (err) => errors.push(err.message))
  await page.goto(`${origin}/`)
  await page.locator('#status', { hasText: 'anonymous' }).waitFor({ timeout: 15_000 })
  await page.fill('#user', 'cookie-user')
  await page.click('#login button')
  await page.locator('#status', { hasText: 'online as cookie-user' }).waitFor({ timeout: 15_000 })
  assert.equal(await page.evaluate(() => (globalThis as unknown as { document: { cookie: string } }).document.cookie), '', 'the session cookie is httpOnly: no script can read it')
  await page.click('#push')
  await page.locator('#log li', { hasText: 'note: Hello at' }).waitFor({ timeout: 15_000 })
  // A tampered cookie is refused at the upgrade (401), never a socket.
  const cookies = await page.context().cookies()
  const session = cookies.find((c) => c.name === 'session')
  assert.ok(session !== undefined)
  const forged = new WebSocket(`${origin.replace('http', 'ws')}/comet`, { headers: { cookie: `session=${session.value.replace('cookie-user', 'admin')}` } })
  forged.on('error', () => {})
  assert.equal(await new Promise((resolve) => forged.on('unexpected-response', (_req, res) => resolve(res.statusCode))), 401)
  // Signing out revokes: the socket closes with 4401 and the page reports auth-failed.
  await page.click('#logout')
  await page.locator('#status[data-status="auth-failed"]').waitFor({ timeout: 15_000 })
  assert.deepEqual(errors, [])
})
