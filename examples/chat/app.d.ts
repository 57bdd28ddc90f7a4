import type { FastifyInstance } from 'fastify'

export interface ChatOptions {
  /** A redis:// URL shared by every instance; in-memory when omitted. */
  redis?: string
  /** The key each user's hash is derived from; instances that share users must share it. */
  secret?: string
  /** A name shown on the page, to tell instances apart. */
  instance?: string
  logger?: boolean | object
}

export function buildApp (options?: ChatOptions): Promise<FastifyInstance>
