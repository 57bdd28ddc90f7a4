// A tiny request/response layer over the Node IPC channel of a child process.
// Parent: `const peer = rpc(child)`, `await peer.call('cmd', args)`.
// Child: `serve({ cmd: async (args) => result })`.
import type { ChildProcess } from 'node:child_process'

interface Request { id: number, cmd: string, args: unknown }
interface Reply { id: number, ok: boolean, result?: unknown, error?: string }

export interface Peer {
  call<T = any> (cmd: string, args?: unknown, timeoutMs?: number): Promise<T>
  child: ChildProcess
}

export function rpc (child: ChildProcess): Peer {
  let next = 1
  const pending = new Map<number, { resolve: (v: any) => void, reject: (e: Error) => void, timer: NodeJS.Timeout }>()
  child.on('message', (msg: Reply) => {
    const p = pending.get(msg.id)
    if (p === undefined) return
    pending.delete(msg.id)
    clearTimeout(p.timer)
    if (msg.ok) p.resolve(msg.result)
    else p.reject(new Error(msg.error))
  })
  child.on('exit', (code, signal) => {
    for (const p of pending.values()) {
      clearTimeout(p.timer)
      p.reject(new Error(`child exited (${code ?? signal}) with a call pending`))
    }
    pending.clear()
  })
  return {
    child,
    call (cmd, args, timeoutMs = 120_000) {
      const id = next++
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          pending.delete(id)
          reject(new Error(`${cmd}: no answer within ${timeoutMs} ms`))
        }, timeoutMs)
        pending.set(id, { resolve, reject, timer })
        child.send({ id, cmd, args } satisfies Request)
      })
    }
  }
}

export type Handlers = Record<string, (args: any) => unknown>

export function serve (handlers: Handlers): void {
  process.on('message', async (msg: Request) => {
    const h = handlers[msg.cmd]
    let reply: Reply
    try {
      if (h === undefined) throw new Error(`unknown command ${msg.cmd}`)
      reply = { id: msg.id, ok: true, result: await h(msg.args) }
    } catch (err) {
      reply = { id: msg.id, ok: false, error: (err as Error).stack ?? String(err) }
    }
    process.send?.(reply)
  })
  // The parent going away must not leave us running.
  process.on('disconnect', () => process.exit(0))
}
