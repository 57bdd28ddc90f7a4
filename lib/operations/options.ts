import type { FastifyReply, FastifyRequest } from 'fastify'
import { errors } from '../errors.ts'

/**
 * The part of a prom-client `Registry` we use: any prom-client ≥ 15 registry fits. Declared here so the
 * package's types do not need prom-client installed.
 */
export interface MetricsRegistry {
  registerMetric (metric: any): void
  removeSingleMetric (name: string): void
  getSingleMetric (name: string): unknown
  metrics (): Promise<string>
  readonly contentType: string
}

export interface MetricsOptions {
  /** The app's prom-client registry: our series join it. Without it, a registry of ours. */
  registry?: MetricsRegistry
  /** Prefix of every series name. @default 'comet_' */
  prefix?: string
  /**
   * Serve our registry at `GET ${path}/metrics`. Ignored (never served) when `registry` is given: the app
   * serves its own. @default true
   */
  endpoint?: boolean
}

export interface AdminOptions {
  /**
   * Decides who may open `${path}/admin` and its API. `true`: allowed. `false`: 401 when the request
   * carries no credentials (no Authorization header, no cookie), 403 otherwise. An error with a 4xx
   * `statusCode` it throws is answered with that status. It may set headers on `reply` (WWW-Authenticate).
   */
  authorize: (request: FastifyRequest, reply: FastifyReply) => boolean | Promise<boolean>
}

export interface OperationOptions {
  /** Prometheus metrics (needs `prom-client`): `true`, or where and how. @default false */
  metrics?: boolean | MetricsOptions
  /** Serve `GET ${path}/health` (200 / 503). `app.comet.health()` works either way. @default false */
  health?: boolean
  /** Serve the admin page at `${path}/admin`, for those `authorize` lets in. @default off */
  admin?: AdminOptions
}

export interface OperationSettings {
  metrics: { registry: MetricsRegistry | null, prefix: string, endpoint: boolean } | null
  health: boolean
  admin: { authorize: AdminOptions['authorize'] } | null
}

export const OPERATION_OPTIONS = ['metrics', 'health', 'admin'] as const

export function normalizeOperations (options: OperationOptions): OperationSettings {
  return { metrics: metrics(options.metrics), health: flag('health', options.health), admin: admin(options.admin) }
}

function metrics (value: unknown): OperationSettings['metrics'] {
  if (value === undefined || value === false) return null
  const given = value === true ? {} : value
  if (typeof given !== 'object' || given === null) throw new errors.OPTIONS('metrics must be true, false or { registry, prefix, endpoint }')
  const { registry, prefix = 'comet_', endpoint, ...rest } = given as MetricsOptions
  const unknown = Object.keys(rest)[0]
  if (unknown !== undefined) throw new errors.OPTIONS(`unknown option "metrics.${unknown}"`)
  if (registry !== undefined && (typeof registry !== 'object' || registry === null || typeof registry.registerMetric !== 'function')) {
    throw new errors.OPTIONS('metrics.registry must be a prom-client Registry')
  }
  if (typeof prefix !== 'string' || !/^([a-zA-Z_:][a-zA-Z0-9_:]*)?$/.test(prefix)) {
    throw new errors.OPTIONS('metrics.prefix must be a Prometheus name prefix such as "comet_" ([a-zA-Z_:][a-zA-Z0-9_:]*)')
  }
  return { registry: registry ?? null, prefix, endpoint: registry === undefined && flag('metrics.endpoint', endpoint, true) }
}

function admin (value: unknown): OperationSettings['admin'] {
  if (value === undefined) return null
  const authorize = (value as AdminOptions | null)?.authorize
  if (typeof authorize !== 'function') {
    throw new errors.OPTIONS('admin must be { authorize: async (request, reply) => boolean }: the admin page is never open to everyone')
  }
  return { authorize }
}

function flag (name: string, value: unknown, fallback = false): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw new errors.OPTIONS(`${name} must be a boolean`)
  return value
}
