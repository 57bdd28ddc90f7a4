import { test } from 'node:test'
import { setImmediate as immediate } from 'node:timers/promises'
import assert from 'node:assert/strict'
import { PING_CHUNK, Slices, SLICES, sliceOf, spread, startHeartbeat } from '../lib/connections/heartbeat.ts'

test('Slices keeps members per slice: a tick sees its own slice only, shutdown sees them all', () => {
  const slices = new Slices<string>()
  const users = Array.from({ length: 1000 }, (_, i) => `user-${i}`)
  for (const user of users) slices.add(sliceOf(user), user)
  slices.add(sliceOf('user-1'), 'user-1')
  assert.equal(slices.size, 1000, 'adding a member twice counts it once')
  for (let slice = 0; slice < SLICES; slice++) {
    assert.deepEqual([...slices.of(slice)].sort(), users.filter((u) => sliceOf(u) === slice).sort())
  }
  assert.ok(slices.of(sliceOf('user-7')).size < 50, 'a slice holds about a hundredth of the members')
  slices.delete(sliceOf('user-7'), 'user-7')
  slices.delete(sliceOf('user-7'), 'user-7')
  slices.delete(sliceOf('absent'), 'absent')
  assert.equal(slices.size, 999)
  assert.deepEqual([...slices].sort(), users.filter((u) => u !== 'user-7').sort())
})

test('the heartbeat visits every slice once per interval, in order, and stops', (t) => {
  t.mock.timers.enable({ apis: ['setInterval'] })
  const seen: number[] = []
  const stop = startHeartbeat(200, (slice) => seen.push(slice))
  t.mock.timers.tick(200)
  assert.deepEqual(seen, Array.from({ length: SLICES }, (_, i) => i), 'one interval: every slice once')
  t.mock.timers.tick(100)
  assert.equal(seen.length, SLICES * 1.5, 'half an interval: half the slices again')
  stop()
  t.mock.timers.tick(1000)
  assert.equal(seen.length, SLICES * 1.5, 'stopped')
})

test('spread visits every item, a chunk at a time with I/O in between, and follows changes to the set', async () => {
  const items = new Set(Array.from({ length: PING_CHUNK * 2 + 3 }, (_, i) => i))
  const seen: number[] = []
  spread(items, (i) => seen.push(i))
  assert.deepEqual(seen, [...items].slice(0, PING_CHUNK), 'the first chunk at once, the rest later')
  items.delete(PING_CHUNK + 1)
  items.add(1000)
  while (seen.at(-1) !== 1000) await immediate()
  assert.deepEqual(seen, [...items], 'every item once; one removed meanwhile is skipped, one added is visited')
})
