import type { FastifyBaseLogger } from 'fastify'
import type { Hub } from '../routing/hub.ts'
import type { Store } from '../store/types.ts'
import type { Connection } from './connection.ts'

/**
 * One timer per instance: pings every socket (terminating those that missed the previous ping) and
 * refreshes this instance's devices in the store, which is what keeps their presence alive.
 */
export function startHeartbeat (conns: Set<Connection>, hub: Hub, store: Store, interval: number, log: FastifyBaseLogger, sweep: () => void): () => void {
  const timer = setInterval(() => {
    for (const conn of conns) {
      if (!conn.alive) conn.terminate()
      else conn.ping()
    }
    store.refresh(hub.devices()).catch((err: unknown) => log.warn({ err }, 'comet: presence refresh failed'))
    sweep()
  }, interval)
  timer.unref()
  return () => clearInterval(timer)
}
