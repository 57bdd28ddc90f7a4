import type { Connection } from '../connections/connection.ts'
import type { Hub } from '../routing/hub.ts'
import type { Store } from '../store/types.ts'
import type { Health } from './health.ts'

/** What the plugin has running, for the gauges, the health check and the admin page. */
export interface Running {
  /** This instance's id: the middle part of its device ids. */
  instance: string
  store: Store
  storeKind: Health['store']
  hub: Hub
  conns: Iterable<Connection> & { readonly size: number }
  heartbeatInterval: number
}
