// A job worker that pushes to the app's users without running Fastify: it takes jobs from a Redis list and
// sends each with the emitter. Run the app with the same REDIS_URL (e.g. `npm run start:cluster`), then:
//   node examples/worker/worker.js
//   redis-cli RPUSH jobs '{"id":"job-1","userId":"42","event":"note","data":{"text":"from a worker"}}'
// A job stays in `jobs:working` until it is sent, so a worker that dies mid-job runs it again when it
// restarts; the job id is the idempotency key, so the user still gets it once.
import { Redis } from 'ioredis'
import { CometEmitter } from 'fastify-comet/emitter'

const url = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379'
const emitter = new CometEmitter({ redis: url })
const jobs = new Redis(url)

const stop = new AbortController()
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stop.abort())

// Jobs a previous run took but did not finish go back to the queue, to be sent (once) now.
while (await jobs.lmove('jobs:working', 'jobs', 'RIGHT', 'LEFT') !== null);
console.log('worker: waiting for jobs')

while (!stop.signal.aborted) {
  const raw = await jobs.blmove('jobs', 'jobs:working', 'LEFT', 'RIGHT', 1) // wakes every second to check for a stop
  if (raw === null) continue
  const job = JSON.parse(raw)
  try {
    const { id, queued } = await emitter.sendToUser(job.userId, job.event, job.data, { idempotencyKey: job.id })
    console.log(`worker: ${job.id} → user ${job.userId}: message ${id}${queued ? ' (queued: the user is offline)' : ''}`)
    await jobs.lrem('jobs:working', 1, raw)
  } catch (err) {
    if (err.code === 'FST_ERR_COMET_UNAVAILABLE') {
      console.error(`worker: ${job.id} will be retried: ${err.message}`) // stays in jobs:working
      await new Promise((resolve) => setTimeout(resolve, 1000))
    } else {
      console.error(`worker: ${job.id} dropped: ${err.message}`) // a bad job: retrying will not help
      await jobs.lrem('jobs:working', 1, raw)
    }
  }
}

// Close what we opened: with nothing left open, the process exits by itself.
await emitter.close()
await jobs.quit()
console.log('worker: stopped')
