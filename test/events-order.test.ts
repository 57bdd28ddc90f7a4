// The per-user (per-channel) order of server events on one instance, whatever order their listeners settle in.
import { test } from 'node:test'
import assert from 'node:assert/strict'
import fc from 'fast-check'
import { Ordered } from '../lib/events/listeners.ts'

test('Ordered runs one key\'s work one at a time in push order, keys concurrently, and goes on after a failure', async () => {
  await fc.assert(fc.asyncProperty(fc.scheduler(), fc.array(fc.tuple(fc.constantFrom('u:a', 'u:b', 'c:x'), fc.boolean()), { minLength: 1, maxLength: 20 }), async (s, work) => {
    const ordered = new Ordered()
    const started: Array<[string, number]> = []
    const running = new Map<string, number>()
    const outcomes = work.map(([key, fails], n) => ordered.push(key, async () => {
      assert.equal(running.get(key) ?? 0, 0, `${key}: one at a time`)
      running.set(key, 1)
      started.push([key, n])
      try {
        await s.schedule(Promise.resolve(), `${key}#${n}`)
        if (fails) throw new Error(`work ${n} failed`)
      } finally {
        running.set(key, 0)
      }
    }).then(() => 'ok', () => 'failed'))
    assert.deepEqual(await s.waitFor(Promise.all(outcomes)), work.map(([, fails]) => fails ? 'failed' : 'ok'), 'each push sees its own outcome')
    for (const key of new Set(work.map(([k]) => k))) {
      const pushed = work.flatMap(([k], n) => k === key ? [n] : [])
      assert.deepEqual(started.filter(([k]) => k === key).map(([, n]) => n), pushed, `${key} in push order`)
    }
    assert.equal(ordered.size, 0)
  }), { numRuns: Number(process.env['REPEAT'] ?? 200) })
})
