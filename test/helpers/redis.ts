import { spawn, spawnSync } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createServer } from 'node:net'

export interface RedisServer {
  port: number
  url: string
  process: ChildProcess
  stop (): Promise<void>
}

const found = spawnSync('redis-server', ['--version'], { encoding: 'utf8' })
if (found.error !== undefined || found.status !== 0) {
  throw new Error('redis-server is not installed: the tests start their own Redis. Install it (Debian: apt-get install -y redis-server) and run the tests again.')
}

export async function freePort (): Promise<number> {
  const server = createServer()
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as { port: number }
  server.close()
  await once(server, 'close')
  return port
}

/** Starts a throw-away redis-server on a free port: nothing on disk, never the machine's own Redis. */
export async function startRedis (port?: number): Promise<RedisServer> {
  const p = port ?? await freePort()
  const child = spawn('redis-server', ['--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning', '--enable-debug-command', 'local'], { stdio: ['ignore', 'pipe', 'pipe'] })
  let output = ''
  child.stdout?.on('data', (d: Buffer) => { output += d.toString() })
  child.stderr?.on('data', (d: Buffer) => { output += d.toString() })
  const deadline = Date.now() + 5000
  for (;;) {
    if (child.exitCode !== null) throw new Error(`redis-server exited on port ${p}: ${output}`)
    const ok = spawnSync('redis-cli', ['-p', String(p), 'ping'], { encoding: 'utf8' })
    if (ok.stdout?.trim() === 'PONG') break
    if (Date.now() > deadline) {
      child.kill('SIGKILL')
      throw new Error(`redis-server did not start on port ${p}: ${output}`)
    }
    await new Promise((resolve) => setTimeout(resolve, 25))
  }
  return {
    port: p,
    url: `redis://127.0.0.1:${p}`,
    process: child,
    async stop () {
      if (child.exitCode !== null || child.signalCode !== null) return
      child.kill('SIGKILL')
      await once(child, 'exit')
    }
  }
}

/** Calls per command since the last `CONFIG RESETSTAT` (`INFO commandstats`; commands run inside scripts count too). */
export async function commandCalls (client: { info (section: string): Promise<string> }): Promise<(name: string) => number> {
  const stats = await client.info('commandstats')
  return (name) => Number(new RegExp(`cmdstat_${name}:calls=(\\d+)`).exec(stats)?.[1] ?? 0)
}
