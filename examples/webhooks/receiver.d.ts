import type { FastifyInstance } from 'fastify'
import type { ServerEvent } from '../../lib/index.ts'

export interface ReceiverOptions {
  /** The webhook's secret, as given to the plugin's `webhooks` option. */
  secret: string
  /** Called once per event id. */
  handle?: (event: ServerEvent) => unknown
  logger?: boolean | object
}

export function buildReceiver (options: ReceiverOptions): Promise<FastifyInstance>
