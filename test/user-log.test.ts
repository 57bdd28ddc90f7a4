// A user's resume log (on Redis lib/store/redis/lua/lib/log.lua) against a model: whatever mix of sends,
// trimming and expiry came before, a device that resumes is either told recovered with exactly the
// messages after its id, in order, or told it may have missed some; and it is told recovered whenever
// nothing it missed can be gone (no more than resume.size since, and the log never expired since).
import { test } from 'node:test'
import type { TestContext } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import fc from 'fast-check'
import { MemoryStore } from '../lib/store/memory/index.ts'
import type { Store, StoreSettings } from '../lib/store/types.ts'
import { NO_HANDLERS, redisStore, STORE_SETTINGS } from './helpers/store.ts'

/** resume.ttl and presenceTtl. */
const TTL = 300
/** The log expires this long after its last message no live device took, or heartbeat (lua/lib/log.lua). */
const LOG_TTL = TTL + TTL * 4 / 3

type Step = { kind: 'send' } | { kind: 'expire' } | { kind: 'resume', pick: number }

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 5, arbitrary: fc.constant({ kind: 'send' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'expire' as const }) },
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('resume' as const), pick: fc.nat() }) }
)

const size = 2
const SETTINGS: StoreSettings = { ...STORE_SETTINGS, resume: { size, ttl: TTL }, presenceTtl: TTL, maxDevices: 1000, presenceGrace: 0 }

const backends: Record<string, (t: TestContext) => Promise<Store>> = {
  async memory () {
    const store = new MemoryStore(SETTINGS)
    await store.start(NO_HANDLERS)
    return store
  },
  async redis (t) {
    const { store, admin } = await redisStore(t, SETTINGS)
    // Stream nodes of 2 entries: MAXLEN ~ trims at every other message instead of every hundredth.
    await admin.config('SET', 'stream-node-max-entries', '2')
    return store
  }
}

for (const [backend, open] of Object.entries(backends)) {
  test(`resuming on ${backend}: recovered means exactly what came after, and it is recovered whenever it can be`, async (t) => {
    const store = await open(t)
    let run = 0
    let resumes = 0
    let recovered = 0
    await fc.assert(fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 20 }), async (steps) => {
      const user = `m${run++}`
      await store.setAuth(user, 'd', undefined)
      await store.listenUser(user)
      // A device online throughout (its heartbeat before every step): sends reach it, so nothing is queued
      // and only the log can give a resuming device what it missed.
      let device = `${Date.now()}.i.online`
      const online = await store.attach(user, device, { digest: 'd' }, null)
      assert.ok(online.ok)
      /** Every id the user was given (a ready's last, or a message's), with the expiry epoch it was given in. */
      const seen: Array<{ id: number, epoch: number }> = [{ id: online.synced, epoch: 0 }]
      const sent: number[] = []
      let epoch = 0
      for (const s of steps) {
        await store.refresh(new Map([[user, [device]]]))
        if (s.kind === 'send') {
          const { id, queued } = await store.sendToUser(user, '{"id":"')
          assert.equal(queued, false)
          assert.ok(Number(id) > Math.max(...seen.map((x) => x.id)), 'an id is above every id given before')
          sent.push(Number(id))
          seen.push({ id: Number(id), epoch })
        } else if (s.kind === 'expire') {
          await store.detach(user, device)
          await sleep(LOG_TTL + 50)
          epoch++
          device = `${Date.now()}.i.online`
          const again = await store.attach(user, device, { digest: 'd' }, null)
          assert.ok(again.ok)
          seen.push({ id: again.synced, epoch })
        } else {
          const since = seen[s.pick % seen.length]!
          const other = `${Date.now()}.i.${resumes++}`
          const back = await store.attach(user, other, { digest: 'd' }, since.id)
          assert.ok(back.ok)
          assert.deepEqual(back.queued, [])
          const after = sent.filter((id) => id > since.id)
          if (back.recovered === true) {
            recovered++
            assert.deepEqual(back.missed.map((m) => m.id), after, 'recovered: exactly what came after since, in order')
            for (const m of back.missed) assert.equal(m.frame.toString(), `{"id":"${m.id}${STORE_SETTINGS.messageTail}`)
          } else {
            assert.deepEqual(back.missed, [])
            assert.ok(after.length > size || since.epoch < epoch, `told it may have missed something, though ${after.length} came after and the log never expired`)
          }
          // The ready's last: what the device is in sync with now (a log that expired is born again, above).
          const newest = Math.max(online.synced, sent.at(-1) ?? 0)
          assert.ok(back.synced >= newest)
          seen.push({ id: back.synced, epoch })
          await store.detach(user, other)
        }
      }
    }), { numRuns: 25 })
    t.diagnostic(`${resumes} resumes, ${recovered} recovered`)
    assert.ok(recovered > resumes / 4, 'most resumes could recover: the property was not vacuous')
  })
}
