import { describe, test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import type { CometOptions } from '../lib/index.ts'
import { appOn, BACKENDS } from './helpers/backends.ts'
import type { Backend } from './helpers/backends.ts'
import { HASH } from './helpers/app.ts'
import type { TestApp } from './helpers/app.ts'
import { eventually, resumeFrom, TestClient } from './helpers/client.ts'
import type { Frame } from './helpers/client.ts'
import { PAIR_BACKENDS, startPair } from './helpers/pair.ts'

const lastId = (c: TestClient): string => c.messages().at(-1)?.id as string

/** An app where `userId` keeps one device online: what is sent to them goes to the resume log, not the queue. */
async function oneDeviceOnline (t: TestContext, backend: Backend, userId: string, options: CometOptions = {}): Promise<TestApp> {
  const started = await appOn(t, backend, options)
  await started.app.comet.registerAuth(userId, HASH)
  const stay = await TestClient.open(started.url)
  t.after(() => stay.close())
  await stay.auth(userId, HASH)
  return started
}

for (const backend of BACKENDS) {
  describe(`resume on the ${backend} store`, () => {
    test('a reloaded tab gets what it missed while the other tab stayed online, in order, before live ones', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('tabs', HASH)
      const stay = await TestClient.open(url)
      const reload = await TestClient.open(url)
      t.after(() => stay.close())
      await stay.auth('tabs', HASH)
      await reload.auth('tabs', HASH)
      await app.comet.sendToUser('tabs', 'n', 0)
      await reload.type('message')
      const since = lastId(reload)
      await reload.close()
      const missed = []
      for (let i = 1; i <= 5; i++) {
        const r = await app.comet.sendToUser('tabs', 'n', i)
        assert.equal(r.queued, false, 'the other tab is online: nothing is queued')
        missed.push(r.id)
      }
      const back = await TestClient.open(url)
      t.after(() => back.close())
      const ready = await back.auth('tabs', HASH, { since })
      assert.equal(ready.recovered, true)
      assert.equal(ready.queued, 5)
      const live = await app.comet.sendToUser('tabs', 'n', 6)
      await eventually(() => back.messages().length === 6, 'missed + live')
      assert.deepEqual(back.messages().map((m) => m.id), [...missed, live.id])
      await sleep(30)
      assert.equal(back.messages().length, 6)
    })

    test('sinceUser: an id kept for another user is ignored, so nothing of this user is skipped; the same user resumes', async (t) => {
      const { app, url } = await appOn(t, backend)
      for (const user of ['kept', 'other']) await app.comet.registerAuth(user, HASH)
      const queued = await app.comet.sendToUser('other', 'n', 'waiting')
      const later = await app.comet.sendToUser('kept', 'n', 'later')
      // A page whose session changed from `kept` to `other` still holds `kept`'s last id, newer than the queued message.
      const switched = await TestClient.open(url)
      t.after(() => switched.close())
      const ready = await switched.auth('other', HASH, { since: later.id, sinceUser: 'kept' })
      assert.equal(ready.recovered, undefined, 'since ignored: no recovered field')
      assert.equal(ready.queued, 1)
      assert.deepEqual((await switched.type('message')).id, queued.id)

      const same = await TestClient.open(url)
      t.after(() => same.close())
      const resumed = await same.auth('kept', HASH, { since: later.id, sinceUser: 'kept' })
      assert.deepEqual([resumed.recovered, resumed.queued], [true, 0], 'the same user resumes from its id')
      const bad = await TestClient.open(url)
      t.after(() => bad.close())
      bad.send({ type: 'auth', userId: 'kept', hash: HASH, since: later.id, sinceUser: 'not a name', ref: 1 })
      assert.equal((await bad.type('error')).code, 'bad_frame')
    })

    test('a device that got no message resumes from ready.last and misses nothing sent while it was away', async (t) => {
      const { app, url } = await oneDeviceOnline(t, backend, 'quiet')
      await app.comet.sendToUser('quiet', 'n', 'before')
      const first = await TestClient.open(url)
      const ready = await first.auth('quiet', HASH)
      await first.close()
      assert.equal(first.messages().length, 0)
      const away = await app.comet.sendToUser('quiet', 'n', 'away')
      assert.equal(away.queued, false, 'the other device is online: only the resume log has it')
      const back = await TestClient.open(url)
      t.after(() => back.close())
      const again = await back.auth('quiet', HASH, { since: ready.last })
      assert.deepEqual([again.recovered, again.queued], [true, 1])
      await back.type('message')
      assert.deepEqual(back.messages().map((m) => m.data), ['away'], 'what was sent before ready.last is not replayed')
    })

    test('since older than what is kept: recovered false, nothing replayed', async (t) => {
      const { app, url } = await oneDeviceOnline(t, backend, 'old', { resume: { size: 3 } })
      const first = await app.comet.sendToUser('old', 'n', 0)
      for (let i = 1; i <= 4; i++) await app.comet.sendToUser('old', 'n', i)
      const back = await TestClient.open(url)
      t.after(() => back.close())
      const ready = await back.auth('old', HASH, { since: first.id })
      assert.deepEqual([ready.recovered, ready.queued], [false, 0])
      await app.comet.sendToUser('old', 'n', 'live')
      await back.type('message')
      assert.deepEqual(back.messages().map((m) => m.data), ['live'], 'never a silent partial set')
    })

    test('a device that missed exactly resume.size messages gets them all; one more and it is told', async (t) => {
      const { app, url } = await oneDeviceOnline(t, backend, 'edge', { resume: { size: 5 } })
      const ids: string[] = []
      for (let i = 0; i < 12; i++) ids.push((await app.comet.sendToUser('edge', 'n', i)).id)
      const full = await TestClient.open(url)
      t.after(() => full.close())
      const ready = await full.auth('edge', HASH, { since: ids[6] })
      assert.deepEqual([ready.recovered, ready.queued], [true, 5])
      await eventually(() => full.messages().length === 5, 'the five missed')
      assert.deepEqual(full.messages().map((m) => m.id), ids.slice(7))
      const over = await TestClient.open(url)
      t.after(() => over.close())
      const told = await over.auth('edge', HASH, { since: ids[5] })
      assert.deepEqual([told.recovered, told.queued], [false, 0], 'six missed, five kept: never a partial set')
    })

    test('messages older than resume.ttl are not replayed, and the device is told', async (t) => {
      const { app, url } = await oneDeviceOnline(t, backend, 'aged', { resume: { ttl: 100 } })
      const first = await app.comet.sendToUser('aged', 'n', 0)
      await app.comet.sendToUser('aged', 'n', 1)
      await sleep(150)
      await app.comet.sendToUser('aged', 'n', 2)
      const back = await TestClient.open(url)
      t.after(() => back.close())
      assert.equal((await back.auth('aged', HASH, { since: first.id })).recovered, false)
    })

    test('resuming and the offline queue never deliver a message twice', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('both', HASH)
      const device = await TestClient.open(url)
      await device.auth('both', HASH)
      await app.comet.sendToUser('both', 'n', 0)
      await device.type('message')
      const since = lastId(device)
      await device.close()
      await eventually(async () => !(await app.comet.isOnline('both')), 'offline')
      const ids = []
      for (let i = 1; i <= 4; i++) {
        const r = await app.comet.sendToUser('both', 'n', i)
        assert.equal(r.queued, true)
        ids.push(r.id)
      }
      const back = await TestClient.open(url)
      t.after(() => back.close())
      const ready = await back.auth('both', HASH, { since })
      assert.deepEqual([ready.recovered, ready.queued], [true, 4])
      await eventually(() => back.messages().length === 4, 'four messages')
      await sleep(30)
      assert.deepEqual(back.messages().map((m) => m.id), ids)
    })

    test('since at the newest id: recovered, nothing to replay', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('same', HASH)
      const { id } = await app.comet.sendToUser('same', 'n', 0)
      const device = await TestClient.open(url)
      t.after(() => device.close())
      const ready = await device.auth('same', HASH, { since: id })
      assert.deepEqual([ready.recovered, ready.queued], [true, 0], 'the queued copy of an id already seen is skipped')
    })

    test('a since for a user we know nothing about is not recoverable', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('fresh', HASH)
      const device = await TestClient.open(url)
      t.after(() => device.close())
      assert.equal((await device.auth('fresh', HASH, { since: '1700000000000000' })).recovered, false)
    })

    test('resume: false keeps no log; since is answered from the last id alone', async (t) => {
      const { app, url } = await oneDeviceOnline(t, backend, 'nolog', { resume: false })
      const first = await app.comet.sendToUser('nolog', 'n', 0)
      const back = await TestClient.open(url)
      t.after(() => back.close())
      assert.equal((await back.auth('nolog', HASH, { since: first.id })).recovered, true)
      await app.comet.sendToUser('nolog', 'n', 1)
      const again = await TestClient.open(url)
      t.after(() => again.close())
      assert.equal((await again.auth('nolog', HASH, { since: first.id })).recovered, false)
    })

    test('a malformed since gets an error frame', async (t) => {
      const { app, url } = await appOn(t, backend)
      await app.comet.registerAuth('bad', HASH)
      const device = await TestClient.open(url)
      t.after(() => device.close())
      device.send({ type: 'auth', userId: 'bad', hash: HASH, since: 12 })
      assert.equal((await device.type('error')).code, 'bad_frame')
    })
  })
}

for (const backend of PAIR_BACKENDS) {
  describe(`resume across two instances on ${backend}`, () => {
    test('a device that keeps reloading across instances, while another stays online, sees every message exactly once', async (t) => {
      const { a, b } = await startPair(t, {}, backend)
      await a.app.comet.registerAuth('flaky', HASH)
      const steady = await TestClient.open(a.url)
      t.after(() => steady.close())
      await steady.auth('flaky', HASH)
      const seen: Frame[] = []
      const stream = { sending: true }
      let reloads = 0
      let firstReady: () => void = () => {}
      const started = new Promise<void>((resolve) => { firstReady = resolve })
      const reloading = (async () => {
        let since: string | undefined
        while (stream.sending) {
          const client = await TestClient.open((reloads++ % 2 === 0 ? b : a).url)
          const ready = await client.auth('flaky', HASH, since === undefined ? {} : { since })
          if (since !== undefined) assert.equal(ready.recovered, true)
          firstReady()
          await sleep(Math.floor(Math.random() * 10))
          await client.close()
          seen.push(...client.messages())
          since = resumeFrom(ready, client.messages(), since)
        }
        const last = await TestClient.open(b.url)
        const ready = await last.auth('flaky', HASH, since === undefined ? {} : { since })
        await eventually(() => last.messages().length >= ready.queued, 'the rest')
        await last.close()
        seen.push(...last.messages())
      })()
      const sent: string[] = []
      await started
      for (let i = 0; i < 300; i++) {
        sent.push((await a.app.comet.sendToUser('flaky', 'n', i)).id)
        if (i % 3 === 0) await sleep(1)
      }
      stream.sending = false
      await reloading
      assert.ok(reloads >= 10, `reloaded ${reloads} times`)
      assert.deepEqual(seen.map((m) => m.id), sent, 'every message, once, in order')
      await eventually(() => steady.messages().length === 300, 'steady device got all')
    })
  })
}
