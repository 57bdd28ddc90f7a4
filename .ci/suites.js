// The test files a command runs: `fast` for `npm test` (the edit-test loop: every behaviour suite, on
// memory and one Redis as package.json's COMET_TEST_BACKENDS says, four files at a time: they mostly
// wait on timers and sockets), `all` for `npm run test:all` and CI (everything, one file at a time: the
// Redis Cluster backend, Sentinel, failovers, soak, storm, the browser).
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
const which = process.argv[2]
if (which !== 'fast' && which !== 'all') throw new Error('usage: node .ci/suites.js fast|all')
console.log((which === 'all' ? all : all.filter((file) => !SLOW.some((slow) => slow.test(file)))).join('\n'))
