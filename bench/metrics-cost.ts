// node --import tsx bench/metrics-cost.ts [rounds] [messages]
//
// What `metrics: true` adds to a send, in one process on the memory store (no Redis round trip to hide it):
// one app with metrics and one without, each with one connected device, take turns sending `messages`
// private messages (100 in flight) until the device has them all. Printed per message: the process's CPU
// time (user + system, which a busy neighbour inflates far less than wall time) and the wall time, median
// and best of the rounds. Rounds alternate so that a busy neighbour slows both alike.
import { once } from 'node:events'
import Fastify from 'fastify'
import WebSocket from 'ws'
import comet from '../lib/index.ts'

const rounds = Number(process.argv[2] ?? 8)
const messages = Number(process.argv[3] ?? 20_000)
const HASH = 'a-long-enough-secret-hash'

interface Rig { name: string, send (): Promise<{ cpu: number, wall: number }>, close (): Promise<void> }

async function rig (name: string, metrics: boolean): Promise<Rig> {
  const app = Fastify()
  await app.register(comet, { metrics, offlineQueue: false, resume: false })
  await app.listen({ port: 0, host: '127.0.0.1' })
  const { port } = app.server.address() as { port: number }
  await app.comet.registerAuth('u', HASH)
  const ws = new WebSocket(`ws://127.0.0.1:${port}/comet`)
  await once(ws, 'open')
  ws.send(JSON.stringify({ type: 'auth', userId: 'u', hash: HASH }))
  await once(ws, 'message')
  let received = 0
  let done: (() => void) | null = null
  ws.on('message', () => { if (++received === messages) done?.() })
  return {
    name,
    async send () {
      received = 0
      const all = new Promise<void>((resolve) => { done = resolve })
      const start = process.hrtime.bigint()
      const cpu = process.cpuUsage()
      for (let sent = 0; sent < messages;) {
        const batch: Array<Promise<unknown>> = []
        for (let i = 0; i < 100 && sent < messages; i++, sent++) batch.push(app.comet.sendToUser('u', 'e', { n: sent }))
        await Promise.all(batch)
      }
      await all
      const used = process.cpuUsage(cpu)
      return { cpu: (used.user + used.system) / messages, wall: Number(process.hrtime.bigint() - start) / 1000 / messages }
    },
    async close () {
      ws.close()
      await app.close()
    }
  }
}

const rigs = [await rig('metrics off', false), await rig('metrics on', true)]
const times = new Map<string, Array<{ cpu: number, wall: number }>>(rigs.map((r) => [r.name, []]))
for (const r of rigs) await r.send() // warm-up
for (let round = 0; round < rounds; round++) {
  for (const r of round % 2 === 0 ? rigs : [...rigs].reverse()) times.get(r.name)!.push(await r.send())
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
const summary = (xs: number[]): string => `median ${median(xs).toFixed(2)}, best ${Math.min(...xs).toFixed(2)}`
for (const [name, runs] of times) {
  process.stdout.write(`${name}: CPU µs/message ${summary(runs.map((r) => r.cpu))}; wall µs/message ${summary(runs.map((r) => r.wall))}\n`)
}
const cpu = (name: string): number[] => times.get(name)!.map((r) => r.cpu)
const [off, on] = [cpu('metrics off'), cpu('metrics on')]
const diff = median(on) - median(off)
process.stdout.write(`CPU difference: ${diff.toFixed(2)} µs per message (${(diff / median(off) * 100).toFixed(1)} %, medians); best of each: ${(Math.min(...on) - Math.min(...off)).toFixed(2)} µs\n`)
for (const r of rigs) await r.close()
