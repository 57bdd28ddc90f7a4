import assert from 'node:assert/strict'
import { mkdirSync } from 'node:fs'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { Browser, BrowserContextOptions, Page } from 'playwright-core'
import type { AdminOptions } from '../../lib/index.ts'
import { HASH, startApp } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'
import { eventually, TestClient } from '../helpers/client.ts'
import { startRedis } from '../helpers/redis.ts'
import type { RedisServer } from '../helpers/redis.ts'
import { launch } from './chromium.ts'

const results = fileURLToPath(new URL('../../test-results/', import.meta.url))
const WAIT = { timeout: 15_000 }
const ADMIN = { username: 'ops', password: 'a-long-admin-password' }
const BASIC = `Basic ${Buffer.from(`${ADMIN.username}:${ADMIN.password}`).toString('base64')}`

/** HTTP Basic: the browser asks for credentials on the challenge, and sends them on every later request. */
const authorize: AdminOptions['authorize'] = async (request, reply) => {
  if (request.headers.authorization === undefined) reply.header('www-authenticate', 'Basic realm="comet admin"')
  return request.headers.authorization === BASIC
}

let redis: RedisServer
let browser: Browser
const apps: TestApp[] = []
const clients: TestClient[] = []
const pageErrors: Error[] = []
let traffic: NodeJS.Timeout | undefined

before(async () => {
  mkdirSync(results, { recursive: true })
  redis = await startRedis()
  for (let i = 0; i < 2; i++) apps.push(await startApp({ redis: redis.url, heartbeatInterval: 2000, admin: { authorize } }))
  browser = await launch()
})

after(async () => {
  clearInterval(traffic)
  await browser?.close()
  for (const client of clients) await client.close()
  for (const { app } of apps) await app.close()
  await redis?.stop()
  assert.deepEqual(pageErrors.map((e) => e.message), [], 'no page threw')
})

function app (i: number): TestApp {
  const found = apps[i]
  if (found === undefined) throw new Error(`no app ${i}`)
  return found
}

function adminUrl (i: number): string {
  return app(i).url.replace(/^ws/, 'http') + '/admin'
}

async function connect (i: number, userId: string, channels: string[] = []): Promise<TestClient> {
  const client = await TestClient.open(app(i).url)
  clients.push(client)
  await client.auth(userId, HASH)
  for (const channel of channels) {
    client.send({ type: 'subscribe', channel })
    await client.next((f) => f.type === 'subscribed' && f.channel === channel)
  }
  return client
}

async function open (options: BrowserContextOptions, i = 0): Promise<Page> {
  const context = await browser.newContext(options)
  const page = await context.newPage()
  page.on('pageerror', (err) => pageErrors.push(err))
  page.on('dialog', (dialog) => { dialog.accept().catch(() => {}) })
  await page.goto(adminUrl(i))
  return page
}

test('the admin page refuses a browser without authorization: 401, and 403 for wrong credentials', async () => {
  // Headless Chromium cannot prompt for a password (a challenged request would wait for one): a request
  // of the page's own origin that sends no credentials shows the 401.
  const context = await browser.newContext()
  const page = await context.newPage()
  page.on('pageerror', (err) => pageErrors.push(err))
  await page.goto(`${new URL(adminUrl(0)).origin}/elsewhere`)
  const statuses = await page.evaluate(async (url) => await Promise.all(['', '/api/overview', '/admin.js'].map(async (path) => (await fetch(url + path, { credentials: 'omit' })).status)), adminUrl(0))
  assert.deepEqual(statuses, [401, 401, 401])
  const wrong = await browser.newContext({ httpCredentials: { username: 'ops', password: 'wrong' } })
  const refused = await (await wrong.newPage()).goto(adminUrl(1))
  assert.equal(refused?.status(), 403)
  assert.match(await refused?.text() ?? '', /not allowed/)
  await context.close()
  await wrong.close()
})

test('two instances with traffic: the page shows both, the chart, channels, failed logins; lookup, send and revoke work', async () => {
  for (const user of ['alice', 'bob', 'carol']) await app(0).app.comet.registerAuth(user, HASH)
  const alice = [await connect(0, 'alice', ['news', 'lobby']), await connect(1, 'alice', ['news'])]
  await connect(1, 'bob', ['news', 'sport'])
  await connect(0, 'carol', ['lobby'])
  const intruder = await TestClient.open(app(1).url)
  intruder.send({ type: 'auth', userId: 'mallory', hash: 'not-the-right-secret-at-all' })
  assert.equal(await intruder.closed, 4401)
  let n = 0
  traffic = setInterval(() => {
    n++
    app(n % 2).app.comet.publish('news', 'tick', { n }).catch(() => {})
    app(n % 2).app.comet.sendToUser('bob', 'tick', { n }).catch(() => {})
  }, 20)

  const page = await open({ httpCredentials: ADMIN, viewport: { width: 1280, height: 900 } })
  await page.locator('#status[data-status="live"]').waitFor(WAIT)
  await page.locator('#instances tbody tr[data-instance]').nth(1).waitFor(WAIT)
  assert.equal(await page.locator('#instances tbody tr[data-instance]').count(), 2)
  await eventually(async () => await page.locator('[data-total="connections"]').textContent() === '4', 'both instances\' sockets in the totals', 10_000)
  assert.equal(await page.locator('[data-total="instances"]').textContent(), '2')
  assert.equal(await page.locator('[data-total="users"]').textContent(), '4', 'alice counts on both instances')
  // Traffic reaches the chart once a 10 s sample is taken.
  await eventually(async () => Number(await page.locator('[data-total="delivered"]').textContent()) > 0, 'a delivery rate', 15_000)
  // The chart ends at the current rate, then keeps the 10 s samples for 15 minutes.
  const heights = async (): Promise<number[]> => {
    const points = await page.locator('#chart polyline[data-series="delivered"]').getAttribute('points') ?? ''
    return points.split(' ').map((p) => Number(p.split(',')[1]))
  }
  await eventually(async () => {
    const ys = await heights()
    const zero = Math.max(...ys)
    return ys.length === 91 && ys.slice(0, -1).some((y) => y < zero)
  }, 'a 10 s sample above zero in the chart', 25_000)
  // A channel is listed once the instance holding its subscribers marks it active, at its next heartbeat.
  const listed = async (): Promise<string> => (await page.locator('#channels tbody tr[data-channel] td:first-child').allTextContents()).join(',')
  await eventually(async () => await listed() === 'news,lobby,sport', 'channels by subscribers, most first', 10_000)
  await page.fill('#channel-search', 'spo')
  await eventually(async () => await page.locator('#channels tbody tr[data-channel]').count() === 1, 'the search narrows the channels', 5000)
  await page.locator('#failed tbody tr', { hasText: 'mallory' }).waitFor(WAIT)
  assert.match(await page.locator('#failed tbody tr', { hasText: 'mallory' }).textContent() ?? '', /127\.0\.0\.1.*bad credentials/)
  await page.screenshot({ path: `${results}admin-laptop.png`, fullPage: true })

  await page.fill('#lookup-user', 'alice')
  await page.click('#lookup-form button')
  await page.locator('#user-result:not([hidden])').waitFor(WAIT)
  assert.equal(await page.locator('[data-field="online"]').textContent(), 'online')
  assert.equal(await page.locator('[data-field="devices"]').textContent(), '2')
  const perInstance = await page.locator('[data-field="instances"]').textContent() ?? ''
  assert.equal(perInstance.split(', ').length, 2, `one device on each instance: ${perInstance}`)
  assert.equal(await page.locator('[data-field="queued"]').textContent(), '0')

  await page.fill('#send-text', 'hello from the admin page')
  await page.click('#send-test')
  for (const device of alice) {
    const message = await device.next((f) => f.type === 'message' && f.event === 'admin_test')
    assert.deepEqual(message['data'], { text: 'hello from the admin page' })
  }
  await page.locator('#user-message', { hasText: 'Sent' }).waitFor(WAIT)

  await page.click('#revoke')
  for (const device of alice) assert.equal(await device.closed, 4401)
  await page.locator('#user-message', { hasText: 'Revoked alice' }).waitFor(WAIT)
  await page.locator('[data-field="online"]', { hasText: 'offline' }).waitFor(WAIT)
  assert.equal(await page.locator('[data-field="devices"]').textContent(), '0')
  assert.equal(await app(1).app.comet.isOnline('alice'), false)
  await assert.rejects(connect(1, 'alice'), /closed with 4401/, 'the secret is gone')
  await page.screenshot({ path: `${results}admin-lookup.png`, fullPage: true })
})

test('the admin page fits a phone', async () => {
  const page = await open({ httpCredentials: ADMIN, viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, isMobile: true, hasTouch: true }, 1)
  await page.locator('#instances tbody tr[data-instance]').nth(1).waitFor(WAIT)
  await page.locator('#channels tbody tr[data-channel]').first().waitFor(WAIT)
  const overflow = await page.evaluate('document.documentElement.scrollWidth - window.innerWidth') as number
  assert.ok(overflow <= 0, `no sideways scrolling of the page (${overflow}px too wide)`)
  const cards = await Promise.all((await page.locator('#totals .card').all()).map(async (card) => (await card.boundingBox())?.width ?? 0))
  assert.ok(cards.every((w) => w >= 120), `totals stay readable: ${cards.join(', ')}`)
  await page.screenshot({ path: `${results}admin-phone.png`, fullPage: true })
})
