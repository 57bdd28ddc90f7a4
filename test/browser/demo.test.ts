import assert from 'node:assert/strict'
import { randomBytes } from 'node:crypto'
import { mkdirSync, statSync } from 'node:fs'
import type { Duplex } from 'node:stream'
import { after, before, test } from 'node:test'
import { fileURLToPath } from 'node:url'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import { buildApp } from '../../examples/chat/app.js'
import { openUpgrades } from '../helpers/app.ts'
import { startRedis } from '../helpers/redis.ts'
import type { RedisServer } from '../helpers/redis.ts'
import { build, launch } from './chromium.ts'

const results = new URL('../../test-results/', import.meta.url)
const WAIT = { timeout: 15_000 }

interface Instance { app: FastifyInstance, origin: string, sockets: Set<Duplex> }

let redis: RedisServer
let browser: Browser
const instances: Instance[] = []
/** Uncaught errors in any page; checked after all tests. */
const pageErrors: Error[] = []

before(async () => {
  build()
  redis = await startRedis()
  // Two demo instances sharing one Redis and one secret, as npm run start:cluster runs them.
  const secret = randomBytes(16).toString('hex')
  for (const name of ['A', 'B']) {
    const app = await buildApp({ redis: redis.url, secret, instance: name })
    const sockets = openUpgrades(app.server)
    await app.listen({ port: 0, host: '127.0.0.1' })
    const { port } = app.server.address() as { port: number }
    instances.push({ app, origin: `http://127.0.0.1:${port}`, sockets })
  }
  browser = await launch()
})

after(async () => {
  await browser?.close()
  for (const { app } of instances) await app.close()
  await redis?.stop()
  assert.deepEqual(pageErrors.map((e) => e.message), [], 'no page threw')
})

function instance (i: number): Instance {
  const found = instances[i]
  if (found === undefined) throw new Error(`no instance ${i}`)
  return found
}

/** A fresh tab (its own browsing context unless one is given) signed in as `userId` on an instance. */
async function signIn (origin: string, userId: string, page?: Page): Promise<Page> {
  const tab = page ?? await (await browser.newContext()).newPage()
  tab.on('pageerror', (err) => pageErrors.push(err))
  await tab.goto(`${origin}/`)
  await tab.fill('#signin-user', userId)
  await tab.click('#signin-form button')
  await waitOpen(tab)
  return tab
}

async function waitOpen (page: Page): Promise<void> {
  const frames: string[] = []
  const record = (ws: { on: (event: 'framereceived', f: (frame: { payload: string | Buffer }) => void) => unknown }): void => {
    ws.on('framereceived', ({ payload }) => { frames.push(String(payload).slice(0, 200)) })
  }
  page.on('websocket', record)
  try {
    await page.locator('#status[data-status="open"]').waitFor(WAIT)
  } catch (err) {
    // What the page shows and what its sockets got since: the failure says where it stopped.
    const status = await page.locator('#status').textContent().catch(() => null)
    throw new Error(`the page did not open: status ${String(status)}; frames ${JSON.stringify(frames.slice(-10))}`, { cause: err })
  } finally {
    page.off('websocket', record)
  }
}

/** The texts of the private messages a page shows, oldest first. */
async function shown (page: Page): Promise<string[]> {
  return (await page.locator('#messages li .text').allTextContents()).reverse()
}

async function waitShown (page: Page, texts: string[]): Promise<void> {
  await until(`${texts.join(', ')} on the page`, async () => {
    const got = await shown(page)
    return texts.every((text) => got.includes(text))
  })
}

async function devices (userId: string): Promise<number> {
  return (await instance(0).app.comet.presence(userId)).devices
}

async function until (what: string, check: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + WAIT.timeout
  while (!await check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
}

test('two pages as the same user on two instances both receive a sendToUser', async () => {
  const onA = await signIn(instance(0).origin, 'alice')
  const onB = await signIn(instance(1).origin, 'alice')
  assert.equal(await devices('alice'), 2)

  const fromA = await instance(0).app.comet.sendToUser('alice', 'chat', { from: 'server', text: 'sent on A' })
  const fromB = await instance(1).app.comet.sendToUser('alice', 'chat', { from: 'server', text: 'sent on B' })
  assert.equal(fromA.queued, false)
  assert.equal(fromB.queued, false)
  for (const page of [onA, onB]) {
    await waitShown(page, ['sent on A', 'sent on B'])
    assert.deepEqual(await shown(page), ['sent on A', 'sent on B'])
  }

  // The form on one instance reaches the user on the other.
  const bob = await signIn(instance(1).origin, 'bob')
  await bob.fill('#send-to', 'alice')
  await bob.fill('#send-text', 'hi from bob')
  await bob.click('#send-form button')
  await waitShown(onA, ['hi from bob'])
  assert.match(await bob.locator('#send-result').textContent() ?? '', /delivered to alice/)
  for (const page of [onA, onB, bob]) await page.context().close()
})

test('a page reload loses nothing sent during the reload, and shows nothing twice', async () => {
  const page = await signIn(instance(0).origin, 'carol')
  await instance(1).app.comet.sendToUser('carol', 'chat', { from: 'server', text: 'before' })
  await waitShown(page, ['before'])

  // Hold the reloaded page's client bundle until messages were sent while no socket was connected.
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  await page.route('**/comet/client.js', async (route) => {
    await held
    await route.continue()
  })
  const reloading = page.reload()
  await until('the old socket to go', async () => await devices('carol') === 0)
  const during = []
  for (const text of ['during 1', 'during 2', 'during 3']) {
    during.push(await instance(1).app.comet.sendToUser('carol', 'chat', { from: 'server', text }))
  }
  assert.ok(during.every((r) => r.queued), 'sent while carol had no socket')
  release()
  await reloading
  await waitOpen(page)
  await instance(0).app.comet.sendToUser('carol', 'chat', { from: 'server', text: 'after' })
  await waitShown(page, ['before', 'during 1', 'during 2', 'during 3', 'after'])
  assert.deepEqual(await shown(page), ['before', 'during 1', 'during 2', 'during 3', 'after'])
  await page.context().close()
})

test('two tabs with shareConnection open one socket, and a closed leader tab hands over without losing messages', async () => {
  const sockets = instance(0).sockets
  const before = new Set(sockets)
  const context = await browser.newContext()
  // Sockets pass straight through until `hold` is set; then the next one waits for `release`.
  // (Playwright wraps the page's WebSocket from the next navigation on, so this comes first.)
  let hold = false
  let release = (): void => {}
  const held = new Promise<void>((resolve) => { release = resolve })
  let waiting = 0
  await context.routeWebSocket(/\/comet$/, async (ws) => {
    if (hold) {
      waiting++
      await held
    }
    ws.connectToServer()
  })
  const first = await signIn(instance(0).origin, 'dave', await context.newPage())
  const second = await signIn(instance(0).origin, 'dave', await context.newPage())
  const opened = [...sockets].filter((socket) => !before.has(socket))
  assert.equal(opened.length, 1, 'one socket on the server for two tabs')
  assert.equal(await devices('dave'), 1, 'one device for two tabs')

  await instance(1).app.comet.sendToUser('dave', 'chat', { from: 'server', text: 'to both tabs' })
  await waitShown(first, ['to both tabs'])
  await waitShown(second, ['to both tabs'])
  // The follower's channel subscriptions and requests go through the leader's socket.
  await second.locator('#members li', { hasText: 'dave' }).waitFor(WAIT)
  await instance(1).app.comet.publish('lobby', 'signin', { userId: 'zoe', instance: 'B' })
  await second.locator('#lobby li', { hasText: 'zoe' }).waitFor(WAIT)

  // The first tab holds the lock and the socket. Hold the second tab's own socket once it takes over,
  // so that a message is sent while no tab is connected.
  hold = true
  const leaderSocket = opened[0]
  // A closing tab may reset its TCP connection: wait for the close, whether or not an error came first
  // (events.once would reject on that error).
  const gone = leaderSocket === undefined || !sockets.has(leaderSocket) ? Promise.resolve() : new Promise((resolve) => leaderSocket.once('close', resolve))
  await first.close()
  await gone
  await until('the old device to leave', async () => await devices('dave') === 0)
  const during = await instance(1).app.comet.sendToUser('dave', 'chat', { from: 'server', text: 'during handover' })
  assert.equal(during.queued, true, 'sent while no tab was connected')
  await until('the second tab to open its socket', async () => waiting === 1)
  release()
  await waitShown(second, ['during handover'])
  await waitOpen(second)
  await instance(1).app.comet.sendToUser('dave', 'chat', { from: 'server', text: 'after handover' })
  await waitShown(second, ['after handover'])
  // The new leader's socket subscribed the tab's channels again (it may take a moment to land in Redis).
  await until('the lobby reaches the new leader', async () => {
    await instance(1).app.comet.publish('lobby', 'signin', { userId: 'yan', instance: 'B' })
    return await second.locator('#lobby li', { hasText: 'yan' }).count() > 0
  })
  assert.deepEqual(await shown(second), ['to both tabs', 'during handover', 'after handover'])
  assert.equal(await devices('dave'), 1)
  assert.equal([...sockets].filter((socket) => !before.has(socket)).length, 1)
  await context.close()
})

test('nothing is lost when messages race a reload or a leader tab closing: the client resumes from since', async () => {
  // No waiting for the old socket to go: some of these reach a socket that is about to disappear.
  const page = await signIn(instance(0).origin, 'heidi')
  await instance(1).app.comet.sendToUser('heidi', 'chat', { from: 'server', text: 'r0' })
  await waitShown(page, ['r0'])
  const reloading = page.reload()
  const sent = ['r1', 'r2', 'r3', 'r4']
  for (const text of sent) await instance(1).app.comet.sendToUser('heidi', 'chat', { from: 'server', text })
  await reloading
  await waitOpen(page)
  await waitShown(page, ['r0', ...sent])
  assert.deepEqual(await shown(page), ['r0', ...sent])
  await page.context().close()

  const context = await browser.newContext()
  const leader = await signIn(instance(0).origin, 'ivan', await context.newPage())
  const follower = await signIn(instance(0).origin, 'ivan', await context.newPage())
  await instance(1).app.comet.sendToUser('ivan', 'chat', { from: 'server', text: 'h0' })
  await waitShown(follower, ['h0'])
  const closing = leader.close()
  const raced = ['h1', 'h2', 'h3', 'h4']
  for (const text of raced) await instance(1).app.comet.sendToUser('ivan', 'chat', { from: 'server', text })
  await closing
  await waitShown(follower, ['h0', ...raced])
  assert.deepEqual(await shown(follower), ['h0', ...raced])
  await context.close()
})

test('offline, the page backs off; back online, it reconnects at once', async () => {
  const context = await browser.newContext()
  const page = await context.newPage()
  // Jitter at its top, so each delay is known: 990, 1980, 3960 ms...
  await page.addInitScript(() => { Math.random = () => 0.99 })
  await signIn(instance(0).origin, 'judy', page)
  await page.evaluate(() => {
    const w = globalThis as unknown as { comet: { on: (e: string, l: (s: string, i: { retryIn?: number }) => void) => void }, log: Array<[number, string, number | undefined]> }
    w.log = []
    w.comet.on('status', (status, info) => w.log.push([Date.now(), status, info.retryIn]))
  })
  // Cut first, then go offline: a close that arrives while Chromium emulates offline can be swallowed, and
  // the page would not know its socket is gone (about 1 run in 5).
  for (const socket of instance(0).sockets) socket.destroy()
  await until('the page saw the close', async () => (await page.evaluate(() => (globalThis as unknown as { log: unknown[] }).log.length)) >= 1)
  await context.setOffline(true)
  await until('three failed attempts', async () => (await page.evaluate(() => (globalThis as unknown as { log: unknown[] }).log.length)) >= 3)
  const online = await page.evaluate(() => Date.now())
  await context.setOffline(false)
  await waitOpen(page)
  const log = await page.evaluate(() => (globalThis as unknown as { log: Array<[number, string, number | undefined]> }).log)
  const open = log.find(([, status]) => status === 'open')
  const lastRetry = log.filter(([, status]) => status === 'connecting').at(-1)
  assert.ok(open !== undefined && lastRetry !== undefined)
  const scheduled = lastRetry[0] + (lastRetry[2] ?? 0)
  assert.ok(scheduled - online > 1000, `the next retry was still ${scheduled - online} ms away`)
  assert.ok(open[0] < scheduled - 500, `reconnected ${open[0] - online} ms after online, the timer would have fired ${scheduled - online} ms after`)
  await context.close()
})

test('the room: what one browser says reaches another instance signed by the server, the member list follows, history fills a late page', async () => {
  const alice = await signIn(instance(0).origin, 'kim')
  const bob = await signIn(instance(1).origin, 'lee')
  const members = async (page: Page): Promise<string[]> => await page.locator('#members li').allTextContents()
  await until('both see both', async () => (await members(alice)).join() === 'kim,lee' && (await members(bob)).join() === 'kim,lee')

  await alice.fill('#room-text', 'hello room')
  await alice.click('#room-form button')
  const line = async (page: Page): Promise<string[]> => await page.locator('#room li').evaluateAll((lis) => lis.map((li) => li.textContent ?? ''))
  await until('bob sees it', async () => (await line(bob)).includes('kimhello room'))
  // The sender shows it when its publish is acknowledged, which may come after bob's copy.
  await until('alice shows it', async () => (await line(alice)).includes('kimhello room'))
  assert.deepEqual(await line(alice), ['kimhello room'], 'the sender shows its own message once')

  const late = await signIn(instance(1).origin, 'max')
  await until('history fills the late page', async () => (await line(late)).includes('kimhello room'))

  await bob.context().close()
  await until('lee leaves the list', async () => (await members(alice)).join() === 'kim,max')
  for (const page of [alice, late]) await page.context().close()
})

test('a revoked hash shows auth-failed and the page stops reconnecting', async () => {
  const page = await signIn(instance(1).origin, 'erin')
  await instance(0).app.comet.revokeAuth('erin')
  await page.locator('#status[data-status="auth-failed"]').waitFor(WAIT)
  await new Promise((resolve) => setTimeout(resolve, 1500))
  assert.equal(await devices('erin'), 0)
  assert.equal(await page.locator('#status').getAttribute('data-status'), 'auth-failed')
  await page.context().close()
})

test('the lobby shows, once each, a user coming online on one instance and going offline', async () => {
  const watcher = await signIn(instance(0).origin, 'wanda')
  const visitor = await signIn(instance(1).origin, 'olga')
  const lines = (text: string) => watcher.locator('#lobby li', { hasText: 'olga' }).filter({ hasText: text })
  await lines('came online').first().waitFor(WAIT)
  await visitor.context().close()
  await lines('went offline').first().waitFor(WAIT)
  // Another heartbeat's worth of time: no instance repeats either.
  await new Promise((resolve) => setTimeout(resolve, 1000))
  assert.equal(await lines('came online').count(), 1)
  assert.equal(await lines('went offline').count(), 1)
  await watcher.context().close()
})

test('a screenshot of the demo is saved under test-results/', async () => {
  const page = await signIn(instance(0).origin, 'frank')
  const peer = await signIn(instance(1).origin, 'grace')
  await peer.fill('#send-to', 'frank')
  await peer.fill('#send-text', 'Hello Frank, this crossed from instance B to instance A through Redis.')
  await peer.click('#send-form button')
  await instance(0).app.comet.sendToUser('frank', 'invoice', { from: 'billing', text: 'Invoice #1042 is paid.' })
  await peer.fill('#room-text', 'Anyone up for lunch?')
  await peer.click('#room-form button')
  await page.fill('#room-text', 'Yes, in ten minutes.')
  await page.click('#room-form button')
  await page.locator('#room li', { hasText: 'Yes, in ten minutes.' }).waitFor(WAIT)
  await page.locator('#members li', { hasText: 'grace' }).waitFor(WAIT)
  await waitShown(page, ['Invoice #1042 is paid.'])
  await page.locator('#lobby li').first().waitFor(WAIT)
  mkdirSync(results, { recursive: true })
  const file = fileURLToPath(new URL('demo.png', results))
  await page.setViewportSize({ width: 1000, height: 760 })
  await page.screenshot({ path: file, fullPage: true })
  assert.ok(statSync(file).size > 10_000, 'a real picture, not an empty file')
  for (const p of [page, peer]) await p.context().close()
})
