// One server instance of either system, run as a child process of bench/run.ts (with --expose-gc).
// Environment: BENCH_SYSTEM=comet|sio, BENCH_PORT, BENCH_REDIS (redis:// URL), BENCH_METRICS=1 (comet with metrics).
// The parent drives it over IPC: register users, send at a fixed rate (open loop), report CPU and memory.
import { createHash } from 'node:crypto'
import { readdir, readFile, writeFile } from 'node:fs/promises'
import { createServer } from 'node:http'
import type { Server } from 'node:http'
import { Session } from 'node:inspector/promises'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { writeHeapSnapshot } from 'node:v8'
import { serve } from './lib/ipc.ts'
import { nowMs } from './lib/clock.ts'
import { BODY } from './lib/payload.ts'

const system = process.env.BENCH_SYSTEM
const port = Number(process.env.BENCH_PORT)
const redisUrl = process.env.BENCH_REDIS!
// Both systems' heartbeat (comet heartbeatInterval, Socket.IO pingInterval); BENCH_HEARTBEAT overrides it
// for the experiment that takes heartbeats out of the measurement window.
const heartbeatInterval = Number(process.env.BENCH_HEARTBEAT ?? 25_000)

// Payload of every bench message besides the timestamps: a short text, as a chat or notification would carry.

/**
 * The server's open sockets, as Node counts them: a listener per socket to count them would itself cost
 * memory per connection (and more for a socket that already has several close listeners).
 */
function openSockets (server: Server): number {
  return (server as unknown as { _connections: number })._connections
}

interface Backend {
  registerAuth (userId: string, hash: string): Promise<void>
  /** Fire one message; `done` is called with whether it was queued (comet) or not. */
  send (userId: string, data: unknown, done: (err: Error | null, queued: boolean) => void): void
  /**
   * One notification to many users at once, the way the system offers it (comet `sendToUsers`, Socket.IO
   * `io.to(rooms).emit`), or with `each`, one send per user. Resolves to how many were queued.
   */
  sendMany (userIds: string[], data: unknown, each: boolean): Promise<number>
  connections (): number
  close (): Promise<void>
}

async function startComet (): Promise<Backend> {
  const { default: Fastify } = await import('fastify')
  const lib = process.env.COMET_LIB ?? new URL('../lib/index.ts', import.meta.url).href
  const { default: comet } = await import(lib)
  const app = Fastify({ logger: false })
  await app.register(comet, { redis: redisUrl, heartbeatInterval, ...(process.env.BENCH_METRICS === '1' ? { metrics: true } : {}) })
  await app.listen({ port, host: '127.0.0.1' })
  const api = (app as any).comet
  return {
    registerAuth: (userId, hash) => api.registerAuth(userId, hash),
    send (userId, data, done) {
      api.sendToUser(userId, 'e', data).then((r: { queued: boolean }) => done(null, r.queued), (err: Error) => done(err, false))
    },
    async sendMany (userIds, data, each) {
      const results: Array<{ queued: boolean }> = each
        ? await Promise.all(userIds.map(id => api.sendToUser(id, 'e', data)))
        : await api.sendToUsers(userIds, 'e', data)
      return results.filter(r => r.queued).length
    },
    connections: () => openSockets(app.server),
    close: () => app.close()
  }
}

async function startSocketIo (): Promise<Backend> {
  const { Server } = await import('socket.io')
  const { createAdapter } = await import('@socket.io/redis-adapter')
  const { Redis } = await import('ioredis')
  const pub = new Redis(redisUrl)
  const sub = pub.duplicate()
  pub.on('error', () => {})
  sub.on('error', () => {})
  const http = createServer()
  // The adapter's documented setup (pub + sub ioredis clients); websocket transport only, as its docs
  // recommend for performance; no HTTP long-polling upgrade, no compression.
  const io = new Server(http, {
    transports: ['websocket'],
    serveClient: false,
    perMessageDeflate: false,
    pingInterval: heartbeatInterval,
    adapter: createAdapter(pub, sub)
  })
  // Same authentication as comet: the backend stores a SHA-256 of the user's secret in Redis, the browser
  // presents (userId, hash) in the Socket.IO CONNECT packet, the server compares.
  io.use((socket, next) => {
    const { userId, hash } = socket.handshake.auth as { userId?: string, hash?: string }
    if (typeof userId !== 'string' || typeof hash !== 'string') return next(new Error('unauthorized'))
    pub.get('sio:auth:' + userId).then((stored) => {
      if (stored !== null && stored === sha256(hash)) {
        socket.data.userId = userId
        next()
      } else next(new Error('unauthorized'))
    }, next)
  })
  io.on('connection', (socket) => {
    const userId = socket.data.userId as string
    socket.join(userId)
    socket.emit('ready', { userId })
  })
  await new Promise<void>(resolve => http.listen(port, '127.0.0.1', resolve))
  return {
    async registerAuth (userId, hash) { await pub.set('sio:auth:' + userId, sha256(hash)) },
    send (userId, data, done) {
      io.to(userId).emit('e', data)
      done(null, false)
    },
    async sendMany (userIds, data, each) {
      if (each) for (const id of userIds) io.to(id).emit('e', data)
      else io.to(userIds).emit('e', data)
      return 0
    },
    connections: () => openSockets(http),
    async close () {
      io.close()
      pub.disconnect()
      sub.disconnect()
    }
  }
}

// The floor: what the issue calls "a bare ws + one-Redis-channel-per-user design with none of our
// features". Plain `ws`, auth against the same SHA-256 in Redis, one SUBSCRIBE per user with local sockets,
// one auto-pipelined PUBLISH per send with the frame serialized once. No queue, no ids that survive a
// restart, no presence, no resume, no slow-client cut-off. It speaks comet's protocol, so the client is the same.
async function startBare (): Promise<Backend> {
  const { WebSocketServer } = await import('ws')
  const { Redis } = await import('ioredis')
  const cmd = new Redis(redisUrl, { enableAutoPipelining: true })
  const sub = new Redis(redisUrl)
  cmd.on('error', () => {})
  sub.on('error', () => {})
  const local = new Map<string, Set<import('ws').WebSocket>>()
  sub.on('messageBuffer', (channel: Buffer, frame: Buffer) => {
    const set = local.get(channel.toString('latin1', 7))
    if (set !== undefined) for (const ws of set) ws.send(frame, { binary: false })
  })
  const http = createServer()
  const wss = new WebSocketServer({ server: http, path: '/comet', perMessageDeflate: false })
  wss.on('connection', (ws) => {
    let userId: string | undefined
    ws.on('message', (raw) => {
      if (userId !== undefined) return
      const m = JSON.parse(raw.toString())
      if (m.type !== 'auth' || typeof m.userId !== 'string' || typeof m.hash !== 'string') return ws.close(4401)
      const id = m.userId as string
      cmd.get('bare:a:' + id).then(async (stored) => {
        if (stored !== sha256(m.hash)) return ws.close(4401)
        userId = id
        let set = local.get(id)
        if (set === undefined) {
          set = new Set()
          local.set(id, set)
          await sub.subscribe('bare:u:' + id)
        }
        set.add(ws)
        ws.on('close', () => {
          set!.delete(ws)
          if (set!.size === 0 && local.get(id) === set) {
            local.delete(id)
            sub.unsubscribe('bare:u:' + id).catch(() => {})
          }
        })
        ws.send(JSON.stringify({ type: 'ready', userId: id, queued: 0, dropped: 0 }))
      }, () => ws.close(1011))
    })
  })
  const ping = setInterval(() => { for (const ws of wss.clients) ws.ping() }, heartbeatInterval)
  ping.unref()
  await new Promise<void>(resolve => http.listen(port, '127.0.0.1', resolve))
  let seq = 0
  return {
    async registerAuth (userId, hash) { await cmd.set('bare:a:' + userId, sha256(hash)) },
    send (userId, data, done) {
      const frame = JSON.stringify({ type: 'message', channel: 'msg', event: 'e', data, id: String(++seq) })
      cmd.publish('bare:u:' + userId, frame).then(() => done(null, false), (err: Error) => done(err, false))
    },
    async sendMany (userIds, data) {
      // The floor has no bulk send: the frame is serialized once, one PUBLISH per user, auto-pipelined.
      const frame = JSON.stringify({ type: 'message', channel: 'msg', event: 'e', data, id: String(++seq) })
      await Promise.all(userIds.map(id => cmd.publish('bare:u:' + id, frame)))
      return 0
    },
    connections: () => openSockets(http),
    async close () {
      clearInterval(ping)
      for (const ws of wss.clients) ws.terminate()
      wss.close()
      http.close()
      cmd.disconnect()
      sub.disconnect()
    }
  }
}

function sha256 (s: string): string {
  return createHash('sha256').update(s).digest('hex')
}

const backend = system === 'comet' ? await startComet() : system === 'bare' ? await startBare() : await startSocketIo()

let users: string[] = []
let devices: Uint8Array = new Uint8Array(0)
let profiler: Session | undefined
// How long the event loop was blocked: the longest stall shows bursts (heartbeats, GC) directly.
const loop = monitorEventLoopDelay({ resolution: 5 })
loop.enable()

serve({
  async register ({ ids, hashes }: { ids: string[], hashes: string[] }) {
    const chunk = 500
    for (let i = 0; i < ids.length; i += chunk) {
      await Promise.all(ids.slice(i, i + chunk).map((id, j) => backend.registerAuth(id, hashes[i + j]!)))
    }
    return ids.length
  },
  // Who the sender may pick, and how many devices each has online (to know how many deliveries to expect).
  targets ({ ids, deviceCounts }: { ids: string[], deviceCounts: number[] }) {
    users = ids
    devices = Uint8Array.from(deviceCounts)
    return users.length
  },
  // Open loop: message i is due at start + i / rate, whatever happened to message i - 1. Its intended send
  // time travels in the payload; the client measures latency from it, so a late sender shows as latency.
  run ({ rate, durationMs, step }: { rate: number, durationMs: number, step: number }) {
    return new Promise((resolve) => {
      const total = Math.round(rate * durationMs / 1000)
      const interval = 1000 / rate
      const t0 = nowMs() + 5
      const cpu0 = process.cpuUsage()
      let sent = 0
      let expected = 0
      let errors = 0
      let queued = 0
      let settled = 0
      let maxLag = 0
      let finished = false
      const done = (err: Error | null, q: boolean): void => {
        settled++
        if (err !== null) errors++
        if (q) queued++
        if (finished && settled === total) report()
      }
      const report = (): void => {
        const cpu = process.cpuUsage(cpu0)
        resolve({ sent, expected, errors, queued, maxLagMs: maxLag, sendCpuMs: (cpu.user + cpu.system) / 1000, t0 })
      }
      const tick = (): void => {
        const now = nowMs()
        const due = Math.min(total, Math.floor((now - t0) / interval) + 1)
        if (due > sent) {
          const lag = now - (t0 + (due - 1) * interval)
          if (lag > maxLag) maxLag = lag
        }
        while (sent < due) {
          const k = (Math.random() * users.length) | 0
          expected += devices[k]!
          backend.send(users[k]!, { t: t0 + sent * interval, s: sent, k: step, b: BODY }, done)
          sent++
        }
        if (sent < total) {
          // No busy loop (it would bill the harness's spinning to the server's CPU): a timer of ≥ 1 ms, and
          // whatever fell due meanwhile goes out on the next tick, late by the timer's slack (≈ 1 ms), which
          // the latency then includes, for both systems alike.
          const wait = t0 + sent * interval - nowMs()
          setTimeout(tick, Math.max(1, Math.min(wait, 50)))
        } else {
          finished = true
          if (settled === total) report()
        }
      }
      setTimeout(tick, 5)
    })
  },
  // One notification to all given users (bulk phase); the payload's t is when it was sent.
  async notify ({ ids, step, each }: { ids: string[], step: number, each: boolean }) {
    const t = nowMs()
    const cpu0 = process.cpuUsage()
    const queued = await backend.sendMany(ids, { t, s: 0, k: step, b: BODY }, each)
    const cpu = process.cpuUsage(cpu0)
    return { t, callMs: nowMs() - t, queued, callCpuMs: (cpu.user + cpu.system) / 1000 }
  },
  // Send `perUser` messages to each given user as fast as possible (offline queue fill).
  async burst ({ ids, perUser }: { ids: string[], perUser: number }) {
    let queued = 0
    let errors = 0
    for (let r = 0; r < perUser; r++) {
      await Promise.all(ids.map(id => new Promise<void>(resolve => {
        backend.send(id, { t: nowMs(), s: r, k: -1, b: BODY }, (err, q) => {
          if (err !== null) errors++
          if (q) queued++
          resolve()
        })
      })))
    }
    return { queued, errors }
  },
  // CPU per thread of this process (Linux /proc), in ms: the main thread vs V8's GC and compiler helpers
  // and libuv's pool. process.cpuUsage() counts all of them together.
  async threads () {
    const out: Record<string, number> = {}
    const tick = 10 // ms per clock tick (USER_HZ 100)
    for (const tid of await readdir('/proc/self/task')) {
      try {
        const stat = await readFile(`/proc/self/task/${tid}/stat`, 'utf8')
        const close = stat.lastIndexOf(')')
        const name = tid === String(process.pid) ? 'main thread' : 'other threads'
        const f = stat.slice(close + 2).split(' ')
        out[name] = (out[name] ?? 0) + (Number(f[11]) + Number(f[12])) * tick
      } catch {}
    }
    return out
  },
  loopReset () {
    loop.reset()
    return true
  },
  loop () {
    return { p99Ms: loop.percentile(99) / 1e6, maxMs: loop.max / 1e6 }
  },
  cpu () {
    const c = process.cpuUsage()
    return { userMs: c.user / 1000, systemMs: c.system / 1000 }
  },
  mem () {
    // Two full collections so what is left is what the connections hold.
    globalThis.gc?.()
    globalThis.gc?.()
    const m = process.memoryUsage()
    return { rss: m.rss, heapUsed: m.heapUsed, external: m.external, arrayBuffers: m.arrayBuffers, connections: backend.connections() }
  },
  heapSnapshot ({ file }: { file: string }) {
    globalThis.gc?.()
    return writeHeapSnapshot(file)
  },
  async profileStart () {
    profiler = new Session()
    profiler.connect()
    await profiler.post('Profiler.enable')
    await profiler.post('Profiler.setSamplingInterval', { interval: 200 })
    await profiler.post('Profiler.start')
    return true
  },
  async profileStop ({ file }: { file: string }) {
    if (profiler === undefined) return false
    const { profile } = await profiler.post('Profiler.stop')
    await writeFile(file, JSON.stringify(profile))
    profiler.disconnect()
    profiler = undefined
    return true
  },
  async close () {
    await backend.close()
    setImmediate(() => process.exit(0))
    return true
  }
})
process.send?.({ id: 0, ok: true, result: 'ready' })
