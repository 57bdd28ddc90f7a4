import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import type { Interface } from 'node:readline'
import type { Readable } from 'node:stream'

export interface Instance {
  child: ChildProcess
  port: number
  url: string
  /** The lines the child prints after {"port":N}. */
  lines: Interface
}

/** Starts test/fixtures/instance.ts in a child process, so a test can SIGKILL or SIGSTOP it. */
export async function spawnInstance (redisUrl: string, heartbeat: number, port = 0, env: Record<string, string> = {}): Promise<Instance> {
  const child = spawn(process.execPath, ['--import', 'tsx', new URL('../fixtures/instance.ts', import.meta.url).pathname], {
    env: { ...process.env, REDIS_URL: redisUrl, HEARTBEAT: String(heartbeat), PORT: String(port), ...env },
    stdio: ['ignore', 'pipe', 'inherit']
  })
  const lines = createInterface({ input: child.stdout as Readable })
  const [line] = await once(lines, 'line') as [string]
  const listening = JSON.parse(line) as { port: number }
  return { child, port: listening.port, url: `ws://127.0.0.1:${listening.port}/comet`, lines }
}
