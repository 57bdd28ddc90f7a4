import { test } from 'node:test'
import assert from 'node:assert/strict'
import { getHeapSpaceStatistics } from 'node:v8'
import { TickBatcher } from '../lib/store/redis/batch.ts'

function oldSpaceUsed (): number {
  return getHeapSpaceStatistics().find((space) => space.space_name === 'old_space')!.space_used_size
}

// A young object that an old one points to survives a scavenge even when both are garbage. The batcher
// once cleared one long-lived Map every turn: once that Map's table had reached the old generation, V8
// allocated every later table there too, and each old table kept its turn's calls alive. Every send was
// promoted (~1 KB each), and the sender needed a full collection every few seconds under load.
// Its own file: node --test runs each file in its own process, so no other test's objects count here.
test('answered batches die young: the batcher does not carry them into the old generation', async () => {
  const batcher = new TickBatcher<string, number>(async (items) => items.map((item) => item.length), () => 0)
  const turns = 40_000
  const allocated = turns * 4 * 1000
  let promoted = 0
  let last = oldSpaceUsed()
  for (let turn = 0; turn < turns; turn++) {
    const lengths = await Promise.all(Array.from({ length: 4 }, (_, i) => batcher.add(`${turn}:${i}:`.padEnd(1000, 'x'))))
    assert.equal(lengths[3], 1000)
    if (turn % 50 === 0) {
      const now = oldSpaceUsed()
      if (now > last) promoted += now - last
      last = now
    }
  }
  // Measured: ~31 MB of 160 now (what happens to be in flight at a scavenge), ~97 MB with the cleared Map.
  assert.ok(promoted < allocated / 3, `${(promoted / 1e6).toFixed(1)} MB of ${allocated / 1e6} MB of answered batches promoted`)
})
