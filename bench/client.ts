// The client process: raw `ws` sockets for both systems, so client-side cost is the same code for both.
// comet speaks docs/protocol.md; Socket.IO is spoken by hand (Engine.IO v4 + Socket.IO v5 over a websocket):
// `0{...}` open → `40{auth}` connect → `40{"sid"}` ack, `2` ping → `3` pong, `42["event",data]` events.
// Latency = arrival time − intended send time carried in the message (same machine clock, lib/clock.ts).
import WebSocket from 'ws'
import { serve } from './lib/ipc.ts'
import { nowMs } from './lib/clock.ts'
import { summarize } from './lib/stats.ts'

type System = 'comet' | 'sio' | 'bare'

interface Target { userId: string, hash: string, port: number }

interface Conn {
  ws: WebSocket
  lastS: number
  lastK: number
  ready: boolean
}

const conns: Conn[] = []
let lat = new Float64Array(1 << 21)
let latN = 0
let step = -2
let received = 0
let outOfOrder = 0
let stale = 0
let dropped = 0
let cpu0 = process.cpuUsage()
let wall0 = 0
// offline drain
let drainReceived = 0
let drainLast = 0
let queuedAnnounced = 0

function onData (c: Conn, d: { t: number, s: number, k: number }): void {
  const now = nowMs()
  if (d.k === -1) {
    drainReceived++
    drainLast = now
    return
  }
  if (d.k !== step) { stale++; return }
  if (c.lastK === d.k && d.s <= c.lastS) outOfOrder++
  c.lastK = d.k
  c.lastS = d.s
  received++
  if (latN === lat.length) {
    const bigger = new Float64Array(lat.length * 2)
    bigger.set(lat)
    lat = bigger
  }
  lat[latN++] = now - d.t
}

let addrCount = 200

function open (system: System, t: Target, index: number): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const localAddress = `127.0.0.${1 + (index % addrCount)}`
    const url = system !== 'sio'
      ? `ws://127.0.0.1:${t.port}/comet`
      : `ws://127.0.0.1:${t.port}/socket.io/?EIO=4&transport=websocket`
    const ws = new WebSocket(url, { perMessageDeflate: false, localAddress })
    const c: Conn = { ws, lastS: -1, lastK: -2, ready: false }
    const fail = (why: string): void => {
      if (c.ready) { dropped++; return }
      c.ready = true // settle once
      ws.terminate()
      reject(new Error(why))
    }
    ws.on('error', (err) => { if (!c.ready) fail(err.message) })
    ws.on('close', (code) => fail(`closed ${code}`))
    if (system !== 'sio') {
      ws.on('open', () => ws.send(JSON.stringify({ type: 'auth', userId: t.userId, hash: t.hash })))
      ws.on('message', (buf) => {
        const m = JSON.parse(buf.toString())
        if (m.type === 'message') onData(c, m.data)
        else if (m.type === 'ready') {
          queuedAnnounced += m.queued ?? 0
          c.ready = true
          resolve(c)
        } else if (m.type === 'error') fail(`error frame ${m.code}`)
      })
    } else {
      ws.on('message', (buf) => {
        const s = buf.toString()
        const type = s.charCodeAt(0)
        if (type === 52 /* '4' message */) {
          const sub = s.charCodeAt(1)
          if (sub === 50 /* '2' EVENT */) {
            const [event, data] = JSON.parse(s.slice(2))
            if (event === 'e') onData(c, data)
            else if (event === 'ready') {
              c.ready = true
              resolve(c)
            }
          } else if (sub === 52 /* '4' CONNECT_ERROR */) fail('connect_error ' + s.slice(2))
        } else if (type === 50 /* '2' ping */) ws.send('3')
        else if (type === 48 /* '0' open */) ws.send('40' + JSON.stringify({ userId: t.userId, hash: t.hash }))
      })
    }
  })
}

serve({
  async connect ({ system, targets, concurrency = 200, addresses = 200 }: { system: System, targets: Target[], concurrency?: number, addresses?: number }) {
    addrCount = addresses
    const t0 = nowMs()
    let next = 0
    let ok = 0
    const errors: Record<string, number> = {}
    const base = conns.length
    const worker = async (): Promise<void> => {
      while (next < targets.length) {
        const i = next++
        try {
          conns.push(await open(system, targets[i]!, base + i))
          ok++
        } catch (err) {
          const k = (err as Error).message.slice(0, 80)
          errors[k] = (errors[k] ?? 0) + 1
        }
      }
    }
    await Promise.all(Array.from({ length: Math.min(concurrency, targets.length) }, worker))
    return { ok, failed: targets.length - ok, ms: nowMs() - t0, errors }
  },
  stepBegin ({ k }: { k: number }) {
    step = k
    received = 0
    outOfOrder = 0
    stale = 0
    latN = 0
    cpu0 = process.cpuUsage()
    wall0 = nowMs()
    return true
  },
  progress () {
    return { received, drainReceived }
  },
  stepEnd () {
    const cpu = process.cpuUsage(cpu0)
    const wall = nowMs() - wall0
    const summary = summarize(lat.subarray(0, latN))
    step = -2
    return { received, outOfOrder, stale, dropped, latency: summary, clientCpuMs: (cpu.user + cpu.system) / 1000, wallMs: wall }
  },
  // Offline queue: connect users whose messages wait in the queue, time until every queued message arrived.
  async drain ({ system, targets, expected, timeoutMs = 60_000 }: { system: System, targets: Target[], expected: number, timeoutMs?: number }) {
    drainReceived = 0
    queuedAnnounced = 0
    const t0 = nowMs()
    let next = 0
    const worker = async (): Promise<void> => {
      while (next < targets.length) {
        const i = next++
        try { conns.push(await open(system, targets[i]!, conns.length + i)) } catch {}
      }
    }
    await Promise.all(Array.from({ length: Math.min(100, targets.length) }, worker))
    const deadline = t0 + timeoutMs
    for (;;) {
      if (drainReceived >= expected || nowMs() > deadline) break
      await new Promise(resolve => setTimeout(resolve, 10))
    }
    return { received: drainReceived, announced: queuedAnnounced, ms: (drainReceived >= expected ? drainLast : nowMs()) - t0 }
  },
  count () {
    return { open: conns.filter(c => c.ws.readyState === WebSocket.OPEN).length, dropped }
  },
  async closeAll () {
    for (const c of conns) {
      c.ready = true
      c.ws.removeAllListeners('close')
      c.ws.terminate()
    }
    conns.length = 0
    dropped = 0
    return true
  },
  mem () {
    return process.memoryUsage().rss
  }
})
process.send?.({ id: 0, ok: true, result: 'ready' })
