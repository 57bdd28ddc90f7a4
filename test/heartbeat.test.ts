import { test } from 'node:test'
import assert from 'node:assert/strict'
import { setTimeout as sleep } from 'node:timers/promises'
import { Slices, SLICES, sliceOf, startHeartbeat } from '../lib/connections/heartbeat.ts'

test('Slices keeps members per slice: a tick sees its own slice only, shutdown sees them all', () => {
  const slices = new Slices<string>()
  const users = Array.from({ length: 10_000 }, (_, i) => `user-${i}`)
  for (const user of users) slices.add(sliceOf(user), user)
  slices.add(sliceOf('user-1'), 'user-1')
  assert.equal(slices.size, 10_000, 'adding a member twice counts it once')
  const bySlice = new Map<number, string[]>()
  for (const user of users) bySlice.set(sliceOf(user), [...(bySlice.get(sliceOf(user)) ?? []), user])
  for (let slice = 0; slice < SLICES; slice++) {
    assert.deepEqual([...slices.of(slice)].sort(), (bySlice.get(slice) ?? []).sort())
  }
  assert.ok(slices.of(sliceOf('user-7')).size < 40, 'a slice holds about a thousandth of the members')
  slices.delete(sliceOf('user-7'), 'user-7')
  slices.delete(sliceOf('user-7'), 'user-7')
  slices.delete(sliceOf('absent'), 'absent')
  assert.equal(slices.size, 9_999)
  assert.deepEqual([...slices].sort(), users.filter((u) => u !== 'user-7').sort())
})

test('the heartbeat visits every slice once per interval, in order, in ticks sized to the sockets', async () => {
  // [sockets, slices a tick]: ~32 sockets a tick; a 200 ms interval wakes every 10 ms (50 slices) at most.
  const cases: Array<[number, number]> = [[0, SLICES], [320, 100], [20_000, 50]]
  for (const [sockets, perTick] of cases) {
    const ticks: number[][] = []
    let current: number[] = []
    const stop = startHeartbeat(200, () => sockets, (slice) => {
      if (current.length === 0) setImmediate(() => { ticks.push(current); current = [] })
      current.push(slice)
    })
    await sleep(300)
    stop()
    await new Promise((resolve) => setImmediate(resolve))
    const seen = ticks.flat()
    assert.deepEqual(seen.slice(0, SLICES), Array.from({ length: SLICES }, (_, i) => i), `${sockets} sockets: every slice, in order`)
    assert.ok(seen.length <= 1.5 * SLICES, `${sockets} sockets: one round in 1.5 intervals (${seen.length})`)
    const round = ticks.slice(0, ticks.findIndex((t) => t.includes(SLICES - 1)) + 1)
    const mean = SLICES / round.length
    assert.ok(mean >= perTick * 0.8 && mean <= perTick * 1.5, `${sockets} sockets: ${mean} slices a tick, about ${perTick}`)
    await sleep(50)
    assert.equal(ticks.flat().length, seen.length, 'stopped')
  }
})
