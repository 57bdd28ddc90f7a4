// The bench's own redis-server: a free port, nothing on disk, stopped at the end.
// It never touches the machine's Redis on 6379.
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import net from 'node:net'
import { Redis } from 'ioredis'

/** Every child process the bench started, killed if the bench itself dies. */
export const spawned = new Set<ChildProcess>()
process.on('exit', () => { for (const p of spawned) p.kill('SIGKILL') })

export async function freePort (): Promise<number> {
  const srv = net.createServer()
  srv.listen(0, '127.0.0.1')
  await once(srv, 'listening')
  const port = (srv.address() as net.AddressInfo).port
  srv.close()
  await once(srv, 'close')
  return port
}

export interface RedisSnapshot {
  calls: Record<string, number>
  commands: number
  netIn: number
  netOut: number
  cpuMs: number
}

export class BenchRedis {
  port = 0
  url = ''
  private proc: ChildProcess | undefined
  private client: Redis | undefined

  async start (): Promise<void> {
    this.port = await freePort()
    this.url = `redis://127.0.0.1:${this.port}`
    this.proc = spawn('/usr/bin/redis-server', [
      '--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--loglevel', 'warning', '--maxclients', '1000'
    ], { stdio: ['ignore', 'ignore', 'inherit'] })
    spawned.add(this.proc)
    this.proc.once('exit', () => spawned.delete(this.proc!))
    this.client = new Redis(this.port, '127.0.0.1', { retryStrategy: () => 50, maxRetriesPerRequest: null })
    this.client.on('error', () => {})
    const deadline = Date.now() + 10_000
    await Promise.race([
      this.client.ping(),
      new Promise((_resolve, reject) => setTimeout(() => reject(new Error('redis-server did not start')), deadline - Date.now()))
    ])
  }

  /** Bytes one INFO call itself adds to the counters, subtracted from every delta. */
  infoIn = 0
  infoOut = 0

  async calibrate (): Promise<void> {
    const a = await this.snapshot()
    const b = await this.snapshot()
    this.infoIn = b.netIn - a.netIn
    this.infoOut = b.netOut - a.netOut
  }

  async snapshot (): Promise<RedisSnapshot> {
    const text = await this.client!.info('all') as string
    const calls: Record<string, number> = {}
    let netIn = 0
    let netOut = 0
    let cpu = 0
    for (const line of text.split('\r\n')) {
      const m = /^cmdstat_([^:]+):calls=(\d+)/.exec(line)
      if (m !== null) { calls[m[1]!] = Number(m[2]); continue }
      const [k, v] = line.split(':')
      if (k === 'total_net_input_bytes') netIn = Number(v)
      else if (k === 'total_net_output_bytes') netOut = Number(v)
      else if (k === 'used_cpu_user' || k === 'used_cpu_sys') cpu += Number(v) * 1000
    }
    let commands = 0
    for (const [name, n] of Object.entries(calls)) if (name !== 'info') commands += n
    return { calls, commands, netIn, netOut, cpuMs: cpu }
  }

  /** Commands Redis executed while `fn` ran, from MONITOR: top-level ones vs those run inside scripts. */
  /**
   * Runs `fn` under MONITOR. Counts top-level commands and the commands scripts run, and the top-level
   * commands whose arguments carry `marker` (the benchmark's message text): what a message costs in round
   * trips, apart from whatever else (a heartbeat) runs meanwhile.
   */
  async monitorDuring<T> (fn: () => Promise<T>, marker: string): Promise<{ result: T, topLevel: Record<string, number>, inScripts: Record<string, number>, carrying: number }> {
    const mon = await this.client!.monitor()
    const topLevel: Record<string, number> = {}
    const inScripts: Record<string, number> = {}
    let carrying = 0
    mon.on('monitor', (_time: string, args: string[], source: string) => {
      const name = String(args[0]).toLowerCase()
      const into = source === 'lua' ? inScripts : topLevel
      into[name] = (into[name] ?? 0) + 1
      if (source !== 'lua' && args.some((arg) => String(arg).includes(marker))) carrying++
    })
    await new Promise(resolve => setTimeout(resolve, 50))
    const result = await fn()
    await new Promise(resolve => setTimeout(resolve, 100))
    mon.disconnect()
    for (const k of ['info', 'ping', 'monitor', 'client', 'hello']) delete topLevel[k]
    return { result, topLevel, inScripts, carrying }
  }

  async stop (): Promise<void> {
    this.client?.disconnect()
    if (this.proc !== undefined && this.proc.exitCode === null) {
      this.proc.kill('SIGTERM')
      await once(this.proc, 'exit')
    }
  }
}

export interface RedisDelta {
  commands: number
  byCommand: Record<string, number>
  netIn: number
  netOut: number
  cpuMs: number
}

export function redisDelta (a: RedisSnapshot, b: RedisSnapshot, r?: BenchRedis): RedisDelta {
  const byCommand: Record<string, number> = {}
  for (const [name, n] of Object.entries(b.calls)) {
    if (name === 'info') continue
    const d = n - (a.calls[name] ?? 0)
    if (d > 0) byCommand[name] = d
  }
  return { commands: b.commands - a.commands, byCommand, netIn: b.netIn - a.netIn - (r?.infoIn ?? 0), netOut: b.netOut - a.netOut - (r?.infoOut ?? 0), cpuMs: b.cpuMs - a.cpuMs }
}
