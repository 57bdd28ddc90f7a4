import { test } from 'node:test'
import type { TestContext } from 'node:test'
import { setImmediate as immediate } from 'node:timers/promises'
import assert from 'node:assert/strict'
import { PING_CHUNK, SOCKET_SLICES, spread, startHeartbeat } from '../lib/connections/heartbeat.ts'
import { Slices, SLICES, sliceOf } from '../lib/routing/slices.ts'

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

/** Mock time, 1 ms at a time: a timer set while the mock runs timers is due after the whole tick otherwise. */
function advance (t: TestContext, ms: number): void {
  for (let i = 0; i < ms; i++) t.mock.timers.tick(1)
}

test('the heartbeat pings every socket slice and refreshes every slice once per interval, in order, and stops', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const seen: string[] = []
  const stop = startHeartbeat(200, () => 20_000, (socketSlice) => seen.push(`p${socketSlice}`), (slice) => seen.push(`r${slice}`))
  advance(t, 200)
  const interval = Array.from({ length: SOCKET_SLICES }, (_, i) => i % (SOCKET_SLICES / SLICES) === 0 ? [`r${i / 10}`, `p${i}`] : [`p${i}`]).flat()
  assert.deepEqual(seen, interval, 'one interval: each slice refreshed once, before its first socket slice; each socket slice pinged once')
  advance(t, 100)
  assert.equal(seen.length, interval.length * 1.5, 'half an interval: half of it again')
  stop()
  advance(t, 1000)
  assert.equal(seen.length, interval.length * 1.5, 'stopped')
})

test('a heartbeat tick pings about PING_CHUNK sockets: many sockets, many small ticks; few sockets, few ticks', (t) => {
  t.mock.timers.enable({ apis: ['setTimeout'] })
  const ticks = (sockets: number): number => {
    let pinged = 0
    let asked = 0
    const stop = startHeartbeat(25_000, () => { asked++; return sockets }, () => { pinged++ }, () => {})
    advance(t, 25_000)
    stop()
    assert.equal(pinged, SOCKET_SLICES, `${sockets} sockets: every socket slice once an interval`)
    return asked - 1 // the socket count is read once to schedule each tick, and once at start
  }
  assert.equal(ticks(20_000), SOCKET_SLICES, '20 sockets a slice: a slice a tick, every 25 ms')
  assert.equal(ticks(6_000), Math.ceil(SOCKET_SLICES / 3), '6 sockets a slice: 3 slices a tick, every 75 ms')
  assert.equal(ticks(1_000), SLICES, 'few sockets: a refresh slice a tick, every 250 ms')
  assert.equal(ticks(0), SLICES, 'none: the same')
})

test('Slices creates a slice\'s set on first use: empty slices cost nothing and read as empty', () => {
  const slices = new Slices<number>(SOCKET_SLICES)
  assert.equal(slices.of(999).size, 0)
  slices.add(999, 1)
  slices.delete(5, 1)
  assert.deepEqual([...slices.of(999)], [1])
  assert.deepEqual([...slices], [1])
  assert.equal(slices.size, 1)
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
