import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { paced } from '../lib/paced.ts'

test('paced: at most 16 calls in flight, every item runs even after a failure, the first failure is thrown', async () => {
  let inFlight = 0
  let most = 0
  const done: number[] = []
  const items = Array.from({ length: 40 }, (_, i) => i)
  await assert.rejects(paced(items, async (i) => {
    inFlight++
    most = Math.max(most, inFlight)
    await sleep(i % 3)
    inFlight--
    done.push(i)
    if (i === 3 || i === 30) throw new Error(`item ${i}`)
  }), /item 3/)
  assert.equal(most, 16)
  assert.deepEqual(done.sort((a, b) => a - b), items)
})

test('paced: resolves once every item ran', async () => {
  const done: number[] = []
  await paced(new Set([1, 2, 3]), async (i) => { done.push(i) })
  assert.deepEqual(done, [1, 2, 3])
})
