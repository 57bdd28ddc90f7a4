// The test files a command runs: `fast` for `npm test` (the edit-test loop: every behaviour suite, on
// memory and one Redis as package.json's COMET_TEST_BACKENDS says, four files at a time: they mostly
// wait on timers and sockets), `slow` for the rest (the Redis Cluster backend's own suites, Sentinel,
// failovers, soak, storm, the browser: one file at a time, as they time and load the machine), `all` for
// both. `npm run test:all` (CI) runs `fast` on every backend two files at a time, then `slow`.
import { readdirSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'

const root = resolve(import.meta.dirname, '..')

/** Suites that need a Redis Cluster, Sentinel, Chromium, child processes or long runs. */
const SLOW = [
  /^test\/browser\//,
  /^test\/(redis-cluster|redis-cluster-failover|channels-cluster|sentinel|failover|redis-failure|crash)\.test\.ts$/,
  /^test\/(soak|storm|churn|slow|exhaustion|batch-gc|example|emitter)\.test\.ts$/
]

function files (dir) {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const path = join(dir, entry.name)
    if (entry.isDirectory()) return files(path)
    return entry.name.endsWith('.test.ts') ? [relative(root, path)] : []
  })
}

const all = files(join(root, 'test')).sort()
const isSlow = (file) => SLOW.some((slow) => slow.test(file))
const which = process.argv[2]
const lists = { all, fast: all.filter((file) => !isSlow(file)), slow: all.filter(isSlow) }
if (!Object.hasOwn(lists, which)) throw new Error('usage: node .ci/suites.js fast|slow|all')
console.log(lists[which].join('\n'))
