// npm run start:cluster: two instances (ports 3000 and 3001) sharing the Redis at REDIS_URL, so a
// message sent on one reaches a browser connected to the other.
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'

const redis = process.env.REDIS_URL
if (redis === undefined) {
  process.stderr.write('Set REDIS_URL to the Redis both instances share, for example REDIS_URL=redis://127.0.0.1:6379 npm run start:cluster\n')
  process.exit(1)
}
// Both instances must derive the same hash for a user, so they share one secret.
const secret = process.env.COMET_DEMO_SECRET ?? randomBytes(32).toString('hex')
const ports = (process.env.PORTS ?? '3000,3001').split(',')
const children = ports.map((port) => spawn(process.execPath, [new URL('./server.js', import.meta.url).pathname], {
  stdio: 'inherit',
  env: { ...process.env, PORT: port, COMET_DEMO_SECRET: secret, INSTANCE: `:${port}` }
}))
let stopping = false
function stop (code) {
  if (stopping) return
  stopping = true
  for (const child of children) child.kill('SIGTERM')
  process.exitCode = code
}
for (const child of children) child.on('exit', (code) => stop(code ?? 1))
process.once('SIGINT', () => stop(0))
process.once('SIGTERM', () => stop(0))
