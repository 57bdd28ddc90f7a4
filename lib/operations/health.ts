import type { Store } from '../store/types.ts'
import { isCluster } from '../store/redis/client.ts'

export interface Health {
  /** `ok` while the store answers a ping within 1 s. */
  status: 'ok' | 'unavailable'
  store: 'memory' | 'redis' | 'cluster'
  /** Open WebSockets on this instance. */
  connections: number
  /** Why the store is unavailable (with `unavailable` only). */
  error?: string
}

export const PING_TIMEOUT = 1000

/** Resolves to whether the store answered a ping within PING_TIMEOUT, and the error if not. */
export async function ping (store: Store): Promise<string | null> {
  let timer: NodeJS.Timeout | undefined
  try {
    await Promise.race([
      store.ping(),
      new Promise((_resolve, reject) => { timer = setTimeout(() => reject(new Error(`no answer within ${PING_TIMEOUT} ms`)), PING_TIMEOUT) })
    ])
    return null
  } catch (err) {
    return (err as Error).message
  } finally {
    clearTimeout(timer)
  }
}

/** What the `redis` option makes the store. */
export function storeKind (redis: unknown): Health['store'] {
  return redis === undefined ? 'memory' : isCluster(redis) ? 'cluster' : 'redis'
}
