import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { createInterface } from 'node:readline'
import type { Readable } from 'node:stream'
import { before, test } from 'node:test'
import WebSocket from 'ws'
import { CometClient } from '../../lib/client/index.ts'
import type { CometMessage } from '../../lib/client/index.ts'
import { startRedis } from '../helpers/redis.ts'
import { build, launch } from './chromium.ts'

// What `npm start` and `npm run start:cluster` run, started as a user would (from the built package).

before(build)

const script = (name: string): string => new URL(`../../examples/chat/${name}`, import.meta.url).pathname

/** The origins the processes print as they start listening. */
async function origins (child: ChildProcess, count: number): Promise<string[]> {
  const found: string[] = []
  for await (const line of createInterface({ input: child.stdout as Readable })) {
    const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(line)
    if (match?.[1] !== undefined) found.push(match[1])
    if (found.length === count) break
  }
  return found
}

async function post (url: string, body: object): Promise<any> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  assert.equal(res.status, 200, await res.clone().text())
  return await res.json()
}

test('npm start: the demo serves its page and the client bundle', async (t) => {
  const child = spawn(process.execPath, [script('server.js')], { env: { ...process.env, PORT: '0', HOST: '127.0.0.1' }, stdio: ['ignore', 'pipe', 'inherit'] })
  t.after(() => child.kill('SIGKILL'))
  const [origin] = await origins(child, 1)
  const page = await fetch(`${origin}/`)
  assert.match(await page.text(), /<script type="module" src="\/chat.js">/)
  const chat = await (await fetch(`${origin}/chat.js`)).text()
  assert.match(chat, /from '\/comet\/client\.js'/)
  const bundle = await fetch(`${origin}/comet/client.js`)
  assert.equal(bundle.status, 200)
  assert.match(bundle.headers.get('content-type') ?? '', /javascript/)
  assert.match(await bundle.text(), /export\s*\{[^}]*CometClient/)

  // And it works in a browser on the in-memory store.
  const browser = await launch()
  t.after(() => browser.close())
  const tab = await browser.newPage()
  const errors: string[] = []
  tab.on('pageerror', (err) => errors.push(err.message))
  await tab.goto(`${origin}/`)
  await tab.fill('#signin-user', 'solo')
  await tab.click('#signin-form button')
  await tab.locator('#status[data-status="open"]').waitFor({ timeout: 15_000 })
  await tab.locator('#members li', { hasText: 'solo' }).waitFor({ timeout: 15_000 })
  await tab.fill('#send-to', 'solo')
  await tab.fill('#send-text', 'note to self')
  await tab.click('#send-form button')
  await tab.locator('#messages li', { hasText: 'note to self' }).waitFor({ timeout: 15_000 })
  assert.deepEqual(errors, [])
})

test('npm run start:cluster: two instances share Redis, and a message sent on one reaches a user on the other', async (t) => {
  const redis = await startRedis()
  t.after(() => redis.stop())
  const child = spawn(process.execPath, [script('cluster.js')], {
    env: { ...process.env, REDIS_URL: redis.url, PORTS: '0,0', HOST: '127.0.0.1' },
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true
  })
  t.after(() => {
    // The launcher and the two instances it started.
    try { process.kill(-(child.pid as number), 'SIGKILL') } catch {}
  })
  const [one, two] = await origins(child, 2)
  assert.ok(one !== undefined && two !== undefined && one !== two)
  const alice = await post(`${two}/api/login`, { userId: 'alice' })
  const bob = await post(`${one}/api/login`, { userId: 'bob' })
  const comet = new CometClient({ url: `${two}/comet`, userId: alice.userId, hash: alice.hash, WebSocket, window: null })
  t.after(() => comet.close())
  const got: CometMessage[] = []
  comet.subscribe('msg.chat', (m) => got.push(m))
  await new Promise<void>((resolve) => comet.on('ready', () => resolve()))
  const sent = await post(`${one}/api/send`, { userId: bob.userId, hash: bob.hash, to: 'alice', text: 'across instances' })
  assert.equal(sent.queued, false)
  const deadline = Date.now() + 5000
  while (got.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 10))
  assert.deepEqual(got.map((m) => m.data), [{ from: 'bob', text: 'across instances', via: bob.instance }])
  assert.equal(got[0]?.id, sent.id)
})

test('npm run start:cluster without REDIS_URL says what to set', async () => {
  const env: NodeJS.ProcessEnv = { ...process.env }
  delete env['REDIS_URL']
  const child = spawn(process.execPath, [script('cluster.js')], { env, stdio: ['ignore', 'ignore', 'pipe'] })
  let stderr = ''
  child.stderr?.on('data', (d: Buffer) => { stderr += d.toString() })
  const code = await new Promise((resolve) => child.on('exit', resolve))
  assert.equal(code, 1)
  assert.match(stderr, /Set REDIS_URL/)
})
