import assert from 'node:assert/strict'
import { after, before, describe, test } from 'node:test'
import { setTimeout as sleep } from 'node:timers/promises'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import type { Browser, Page } from 'playwright-core'
import comet from '../../lib/index.ts'
import { HASH, startApp } from '../helpers/app.ts'
import type { TestApp } from '../helpers/app.ts'
import { startRedis } from '../helpers/redis.ts'
import type { RedisServer } from '../helpers/redis.ts'
import { build, launch } from './chromium.ts'

/** Rounds per variant: `RELOAD_RUNS=20` for a long verification run. */
const RUNS = Number(process.env['RELOAD_RUNS'] ?? 1)
const SENDS = 150
const RELOADS = 3

/**
 * A page as an app would write it: CometClient with its defaults (or `persistLastId: false` from the
 * query), recording every private message it is handed in localStorage, which outlives the reloads.
 */
const PAGE = `<!doctype html>
<meta charset="utf-8">
<title>reload</title>
<script type="module">
  import { CometClient } from '/comet/client.js'
  const q = new URLSearchParams(location.search)
  // hook=1: signed in by the app's session cookie (the authenticate option), so the page names no user.
  const options = q.get('hook') === '1'
    ? { url: '/comet' }
    : { url: '/comet', userId: q.get('user'), hash: q.get('hash'), shareConnection: q.get('share') === '1' }
  if (q.get('persist') === '0') options.persistLastId = false
  const comet = new CometClient(options)
  comet.subscribe('msg', (m) => {
    const got = JSON.parse(localStorage.getItem('got') ?? '[]')
    got.push(m.id)
    localStorage.setItem('got', JSON.stringify(got))
  })
  comet.on('ready', () => { document.body.dataset.ready = 'yes' })
</script>
<body></body>`

let redis: RedisServer
let browser: Browser
let a: TestApp
/** Instance B, serving the page too. */
let b: FastifyInstance
/** The page's origin: instance B, which also holds the page's socket; the sends go through A. */
let origin: string

before(async () => {
  build()
  redis = await startRedis()
  a = await startApp({ redis: redis.url })
  const page = Fastify({ logger: false })
  await page.register(comet, {
    redis: redis.url,
    authenticate: (request) => /(?:^|; )user=([\w-]+)/.exec(request.headers.cookie ?? '')?.[1] ?? null
  })
  page.get('/page', async (_req, reply) => await reply.type('text/html').send(PAGE))
  await page.listen({ port: 0, host: '127.0.0.1' })
  origin = `http://127.0.0.1:${(page.server.address() as { port: number }).port}`
  b = page
  browser = await launch()
})

after(async () => {
  await browser?.close()
  await a?.app.close()
  await b?.close()
  await redis?.stop()
})

async function received (page: Page): Promise<string[]> {
  return await page.evaluate('JSON.parse(localStorage.getItem("got") ?? "[]")') as string[]
}

/** 150 sends 20 ms apart while the page reloads 3 times; every id must be handed to the page once. */
async function reloadDuringStream (user: string, query: string): Promise<{ missing: string[], twice: string[] }> {
  await a.app.comet.registerAuth(user, HASH)
  const context = await browser.newContext()
  if (query.includes('hook=1')) await context.addCookies([{ name: 'user', value: user, url: origin }])
  try {
    const page = await context.newPage()
    const errors: Error[] = []
    page.on('pageerror', (err) => errors.push(err))
    await page.goto(`${origin}/page?user=${user}&hash=${HASH}${query}`)
    await page.locator('body[data-ready="yes"]').waitFor({ state: 'attached', timeout: 15_000 })

    const sent: string[] = []
    const sending = (async () => {
      for (let i = 0; i < SENDS; i++) {
        sent.push((await a.app.comet.sendToUser(user, 'n', i)).id)
        await sleep(20)
      }
    })()
    for (let r = 0; r < RELOADS; r++) {
      await sleep(500 + Math.floor(Math.random() * 300))
      await page.reload()
    }
    await sending
    const deadline = Date.now() + 10_000
    while ((await received(page)).length < SENDS && Date.now() < deadline) await sleep(50)
    await sleep(200)
    const got = await received(page)
    assert.deepEqual(errors.map((e) => e.message), [], 'no page threw')
    const counts = new Map<string, number>()
    for (const id of got) counts.set(id, (counts.get(id) ?? 0) + 1)
    return {
      missing: sent.filter((id) => !counts.has(id)),
      twice: [...counts].filter(([, n]) => n > 1).map(([id]) => id)
    }
  } finally {
    await context.close()
  }
}

const VARIANTS = [
  ['a page of its own', ''],
  ['shareConnection (the leader tab reloads)', '&share=1'],
  ['a page signed in by the session cookie (authenticate), naming no user', '&hook=1']
] as const

for (const [name, query] of VARIANTS) {
  describe(`Chromium reloads during a stream, ${name} (${RUNS} rounds)`, () => {
    for (let run = 1; run <= RUNS; run++) {
      test(`round ${run}: every message is handed to the page exactly once across ${RELOADS} reloads`, async () => {
        const { missing, twice } = await reloadDuringStream(`reload${VARIANTS.findIndex(([, q]) => q === query)}r${run}`, query)
        assert.deepEqual(missing, [], 'nothing lost')
        assert.deepEqual(twice, [], 'nothing twice')
      })
    }
  })
}
